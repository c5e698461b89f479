// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {LowLevelCall} from "@openzeppelin/contracts/utils/LowLevelCall.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEpochClock} from "./interfaces/IEpochClock.sol";

/// @title BandwidthCredit: prepaid bytes, locked per relay before they are served, burned as used
/// @notice An account buys bytes at `pricePerGB` X0T per 1e9 bytes. Before a relay serves it, the
/// account locks part of its credit for that relay (a one-way payment channel): locked bytes can
/// only pay that relay, by cumulative receipts the account's client keys sign, until the lock's
/// expiry epoch plus its submission window has passed; only then can the account release what is
/// left. So a relay that serves only against a landed lock is paid whatever the payer does later
/// (refund through its own relay, key revocation, racing submissions).
/// Client keys carry a cap on the bytes they may lock per epoch; revocation stops new locks at once
/// and leaves existing locks payable. Locks are opened by the account itself (`lock`) or by anyone
/// carrying a lock request signed by a client key (`openLocks`, which relays batch).
/// @dev Free credit and each lock hold (bytes left, X0T escrowed for them). Moving or consuming b
/// bytes moves escrow * b / bytesLeft X0T, the average price actually paid, so a later price change
/// never re-prices bytes already bought and the value released never exceeds what was paid.
/// A receipt carries the cumulative cells and bytes of the (account, relay) channel: only the part
/// above what was already paid is paid, at most what the lock still holds, so a receipt never
/// burns its slot (it pays the rest after a top-up), replays pay nothing, and an older receipt
/// never blocks a newer one. A client key is bound to the first account that authorises it.
/// Roles: DEFAULT_ADMIN_ROLE (the governance timelock) sets the price, the treasury and the
/// EpochRewards contract; only that EpochRewards contract consumes and settles credit.
/// The contract must be fee-exempt in X0T; purchases are credited with what actually arrived.
contract BandwidthCredit is AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Bytes in one priced unit (a decimal gigabyte).
    uint256 public constant BYTES_PER_GB = 1e9;
    /// @notice Latest expiry a lock may have, in epochs after the current one.
    uint64 public constant MAX_LOCK_EPOCHS = 168;
    /// @notice Latest expiry a lock request signed by a client key may set, in epochs after the
    /// current one: a stolen key cannot pin the account's locks for long.
    uint64 public constant MAX_KEY_LOCK_EPOCHS = 24;
    /// @notice EIP-712 type a client key signs to prove the account may authorise it.
    bytes32 public constant KEY_AUTHORIZATION_TYPEHASH = keccak256(
        "ClientKeyAuthorization(address account,address key,uint96 capPerEpoch)"
    );
    /// @notice EIP-712 type of a lock request a client key signs.
    bytes32 public constant LOCK_TYPEHASH = keccak256(
        "Lock(address relayer,uint96 bytes,uint64 expiresEpoch,uint256 nonce)"
    );
    uint64 private constant NOT_REVOKED = type(uint64).max;

    struct Credit {
        uint128 bytesLeft;
        uint128 escrow; // X0T held for bytesLeft
    }

    struct ClientKey {
        address account; // fixed at authorisation
        uint64 revokedAfter; // last epoch whose receipts the key may sign (NOT_REVOKED while active)
        uint96 capPerEpoch; // most bytes the key may lock per epoch
        uint96 spentInEpoch;
        uint64 spendEpoch; // epoch `spentInEpoch` counts
    }

    /// @notice Credit locked by an account for one relay, and what the channel has paid so far.
    struct Lock {
        uint96 bytesLeft; // still payable to the relay
        uint96 escrow; // X0T held for bytesLeft
        uint64 expiresEpoch; // receipts for later epochs are refused
    }

    /// @notice What one client key's receipts have been paid by one relay's lock (cumulative).
    struct Channel {
        uint64 cellsPaid;
        uint96 bytesPaid;
    }

    /// @notice A lock request signed by a client key, as `openLocks` takes it.
    struct LockRequest {
        address key;
        address relayer;
        uint96 bytes_;
        uint64 expiresEpoch;
        uint256 nonce;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice The X0T token.
    IERC20 public immutable token;
    /// @notice X0T (wei) per BYTES_PER_GB for new purchases.
    uint256 public pricePerGB;
    /// @notice The treasury (the DAO's multisig): receives the treasury share at settlement.
    address public treasury;
    /// @notice The contract that consumes credit, settles it and tells the epoch.
    address public epochRewards;

    /// @notice Free (unlocked) credit of each account.
    mapping(address account => Credit) public creditOf;
    /// @notice Account, cap and revocation of each client key.
    mapping(address key => ClientKey) public clientKeys;
    mapping(address account => mapping(address relayer => Lock)) private _locks;
    mapping(address key => mapping(address relayer => Channel)) private _channels;
    mapping(address key => mapping(uint256 word => uint256 bits)) private _usedNonces;

    /// @notice `account` bought `bytesBought` bytes for `paid` X0T.
    event CreditPurchased(address indexed account, uint256 paid, uint256 bytesBought, uint256 pricePerGB);
    /// @notice `account` authorised `key` to sign for it, locking at most `capPerEpoch` bytes an epoch.
    event ClientKeyAuthorized(address indexed account, address indexed key, uint256 capPerEpoch);
    /// @notice `account` changed the per-epoch cap of `key`.
    event ClientKeyCapChanged(address indexed account, address indexed key, uint256 capPerEpoch);
    /// @notice `key` opens no more locks for `account`, and signs receipts for epochs up to `lastEpoch` only.
    event ClientKeyRevoked(address indexed account, address indexed key, uint64 lastEpoch);
    /// @notice `account` cancelled lock request `nonce` of `key` before it landed.
    event LockNonceCancelled(address indexed account, address indexed key, uint256 nonce);
    /// @notice `account` locked `bytesLocked` bytes (worth `value` X0T) for `relayer` until `expiresEpoch`.
    event CreditLocked(
        address indexed account,
        address indexed relayer,
        address indexed key,
        uint256 bytesLocked,
        uint256 value,
        uint64 expiresEpoch
    );
    /// @notice A lock request was refused; `reason` is the ABI-encoded custom error.
    event LockRejected(address indexed key, address indexed relayer, uint256 nonce, bytes reason);
    /// @notice The rest of an expired lock went back to the account's free credit.
    event LockReleased(address indexed account, address indexed relayer, uint256 bytesReleased, uint256 value);
    /// @notice A receipt of `relayer` for `epoch` consumed `bytesUsed` of `account`'s lock, worth `value` X0T.
    event CreditConsumed(
        address indexed account,
        address indexed relayer,
        uint64 indexed epoch,
        address key,
        uint256 cells,
        uint256 bytesUsed,
        uint256 value
    );
    /// @notice Consumed credit was settled: `burned` X0T burned, `toTreasury` sent to the treasury.
    event CreditSettled(uint256 burned, uint256 toTreasury);
    /// @notice Governance changed the price of new credit.
    event PriceChanged(uint256 previous, uint256 current);
    /// @notice Governance changed the treasury.
    event TreasuryChanged(address previous, address current);
    /// @notice Governance changed the EpochRewards contract.
    event EpochRewardsChanged(address previous, address current);

    error ZeroAddress();
    error ZeroAmount();
    error PurchaseTooSmall(uint256 paid, uint256 pricePerGB);
    error KeyAlreadyAuthorized(address key, address account);
    error InvalidKeyProof(address key, address signer);
    error UnknownClientKey(address key);
    error NotKeyAccount(address key, address account, address caller);
    error KeyAlreadyRevoked(address key);
    error KeyRevoked(address key, uint64 lastEpoch, uint64 epoch);
    error KeyCapExceeded(address key, uint256 spent, uint256 requested, uint256 cap);
    error InvalidLockSignature(address key, address recovered);
    error NonceUsed(address key, uint256 nonce);
    error InvalidExpiry(uint64 expiresEpoch, uint64 currentEpoch, uint64 latest);
    error InsufficientCredit(address account, uint256 bytesLeft, uint256 bytesNeeded);
    error LockNotReleasable(address account, address relayer, uint64 expiresEpoch, uint64 receiptsCloseAt);
    error NothingLocked(address account, address relayer);
    error LockTooLarge(uint256 bytesLocked);
    error LockExpired(address account, address relayer, uint64 epoch, uint64 expiresEpoch);
    error NothingNewToPay(address account, address relayer, uint256 cells, uint256 bytesPaid);
    error OnlyEpochRewards(address caller);

    /// @param token_ The X0T token.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance).
    /// @param pricePerGB_ Initial price, X0T wei per 1e9 bytes (1e18 = 1 X0T per GB).
    /// @param treasury_ The treasury.
    constructor(
        IERC20 token_,
        address admin,
        uint256 pricePerGB_,
        address treasury_
    ) EIP712("x0tta6bl4 BandwidthCredit", "1") {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setPrice(pricePerGB_);
        _setTreasury(treasury_);
    }

    // ---------------------------------------------------------------- buyers

    /// @notice Buys credit for the caller with `amount` X0T approved beforehand.
    /// @param amount X0T (wei) to spend.
    /// @return bytesBought Bytes added to the caller's free credit.
    function buy(uint256 amount) external nonReentrant returns (uint256 bytesBought) {
        return _buy(amount);
    }

    /// @notice Buys credit for the caller in one transaction, with an EIP-2612 permit for `amount`.
    /// @dev A permit that fails (for example front-run) is ignored if the allowance is already there.
    /// @param amount X0T (wei) to spend.
    /// @param deadline Permit deadline.
    /// @param v Permit signature v.
    /// @param r Permit signature r.
    /// @param s Permit signature s.
    /// @return bytesBought Bytes added to the caller's free credit.
    function buyWithPermit(
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 bytesBought) {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        return _buy(amount);
    }

    /// @notice Lets `key` sign lock requests and receipts for the caller.
    /// @param key The client key (an address).
    /// @param capPerEpoch Most bytes the key may lock per epoch (non-zero).
    /// @param proof EIP-712 signature by `key` over ClientKeyAuthorization(caller, key, capPerEpoch).
    function authorizeClientKey(address key, uint96 capPerEpoch, bytes calldata proof) external {
        if (key == address(0)) revert ZeroAddress();
        if (capPerEpoch == 0) revert ZeroAmount();
        ClientKey storage entry = clientKeys[key];
        if (entry.account != address(0)) revert KeyAlreadyAuthorized(key, entry.account);
        (address signer, , ) = ECDSA.tryRecover(keyAuthorizationDigest(msg.sender, key, capPerEpoch), proof);
        if (signer != key) revert InvalidKeyProof(key, signer);
        entry.account = msg.sender;
        entry.revokedAfter = NOT_REVOKED;
        entry.capPerEpoch = capPerEpoch;
        emit ClientKeyAuthorized(msg.sender, key, capPerEpoch);
    }

    /// @notice Changes how many bytes `key` may lock per epoch, from the next lock on.
    /// @param key A key the caller authorised and did not revoke.
    /// @param capPerEpoch The new cap (non-zero).
    function setClientKeyCap(address key, uint96 capPerEpoch) external {
        ClientKey storage entry = _ownKey(key);
        if (capPerEpoch == 0) revert ZeroAmount();
        entry.capPerEpoch = capPerEpoch;
        emit ClientKeyCapChanged(msg.sender, key, capPerEpoch);
    }

    /// @notice Stops `key` from opening locks for the caller, at once, and from signing receipts for
    /// any later epoch than the current one. Its receipts up to this epoch stay payable (relays
    /// already served against them), so revoking cannot cheat a relay; a thief holding the key can
    /// sign nothing for the epochs after.
    /// @param key A key the caller authorised.
    function revokeClientKey(address key) external {
        ClientKey storage entry = _ownKey(key);
        uint64 lastEpoch = IEpochClock(epochRewards).currentEpoch();
        entry.revokedAfter = lastEpoch;
        emit ClientKeyRevoked(msg.sender, key, lastEpoch);
    }

    /// @notice Cancels a lock request that `key` signed and that has not landed yet.
    /// @param key A key the caller authorised.
    /// @param nonce The request's nonce.
    function cancelLockNonce(address key, uint256 nonce) external {
        address account = clientKeys[key].account;
        if (account != msg.sender) revert NotKeyAccount(key, account, msg.sender);
        _usedNonces[key][nonce >> 8] |= 1 << (nonce & 0xff);
        emit LockNonceCancelled(msg.sender, key, nonce);
    }

    /// @notice Locks `bytes_` of the caller's free credit for `relayer` until `expiresEpoch`; adds to
    /// an existing lock (whose expiry only ever moves later).
    /// @param relayer The relay (operator address) that may be paid from the lock.
    /// @param bytes_ Bytes to lock.
    /// @param expiresEpoch Last epoch whose receipts the lock pays, at most MAX_LOCK_EPOCHS ahead.
    function lock(address relayer, uint96 bytes_, uint64 expiresEpoch) external {
        bytes memory reason = _lock(msg.sender, address(0), relayer, bytes_, expiresEpoch, MAX_LOCK_EPOCHS);
        if (reason.length != 0) LowLevelCall.bubbleRevert(reason);
    }

    /// @notice Opens the locks that client keys signed. Anyone may call (relays batch the requests
    /// of their payers). A request that fails is skipped with `LockRejected`; the rest go through.
    /// @param requests Lock requests, each signed by an authorised, unrevoked client key.
    /// @return opened Number of requests that locked credit.
    function openLocks(LockRequest[] calldata requests) external returns (uint256 opened) {
        for (uint256 i; i < requests.length; ++i) {
            LockRequest calldata q = requests[i];
            bytes memory reason = _lockFromRequest(q);
            if (reason.length == 0) ++opened;
            else emit LockRejected(q.key, q.relayer, q.nonce, reason);
        }
    }

    /// @notice Returns what is left of `account`'s lock for `relayer` to its free credit, once
    /// receipts for the lock's last epoch can no longer be submitted. Anyone may call.
    /// @param account The account that locked.
    /// @param relayer The relay it locked for.
    function releaseLock(address account, address relayer) external {
        Lock storage held = _locks[account][relayer];
        Lock memory m = held;
        if (m.bytesLeft == 0) revert NothingLocked(account, relayer);
        (bool closed, uint64 closesAt) = IEpochClock(epochRewards).receiptsClosed(m.expiresEpoch);
        if (!closed) revert LockNotReleasable(account, relayer, m.expiresEpoch, closesAt);
        held.bytesLeft = 0;
        held.escrow = 0;
        Credit storage c = creditOf[account];
        c.bytesLeft += m.bytesLeft;
        c.escrow += m.escrow;
        emit LockReleased(account, relayer, m.bytesLeft, m.escrow);
    }

    // ---------------------------------------------------------------- EpochRewards

    /// @notice Pays `relayer` from the lock of `key`'s account for a receipt of `epoch` carrying the
    /// channel's cumulative `cells` and `bytes_`: the part above what the channel already paid, at
    /// most what the lock holds. Only EpochRewards. Reverts, changing nothing, if nothing is payable.
    /// @param key Client key that signed the receipt (a revoked key, for epochs up to its revocation).
    /// @param relayer Relayer paid by the receipt.
    /// @param epoch Epoch of the receipt.
    /// @param cells Cumulative cells of the channel, as signed.
    /// @param bytes_ Cumulative bytes of the channel, as signed.
    /// @return newCells Cells newly paid (pro rata when the lock could pay only part).
    /// @return value X0T released for the newly paid bytes; EpochRewards settles it.
    function consume(
        address key,
        address relayer,
        uint64 epoch,
        uint64 cells,
        uint96 bytes_
    ) external returns (uint256 newCells, uint256 value) {
        if (msg.sender != epochRewards) revert OnlyEpochRewards(msg.sender);
        ClientKey storage entry = clientKeys[key];
        address account = entry.account;
        if (account == address(0)) revert UnknownClientKey(key);
        if (epoch > entry.revokedAfter) revert KeyRevoked(key, entry.revokedAfter, epoch);
        uint256 paid;
        (paid, newCells, value) = _pay(
            _locks[account][relayer],
            _channels[key][relayer],
            account,
            relayer,
            epoch,
            cells,
            bytes_
        );
        emit CreditConsumed(account, relayer, epoch, key, newCells, paid, value);
    }

    /// @notice Burns `value` of consumed credit except `toTreasury`, which goes to the treasury.
    /// Only EpochRewards, after each batch, for what the batch consumed.
    /// @param value X0T consumed.
    /// @param toTreasury The treasury's part of it.
    function settle(uint256 value, uint256 toTreasury) external {
        if (msg.sender != epochRewards) revert OnlyEpochRewards(msg.sender);
        uint256 burned = value - toTreasury;
        emit CreditSettled(burned, toTreasury);
        if (burned != 0) ERC20Burnable(address(token)).burn(burned);
        if (toTreasury != 0) token.safeTransfer(treasury, toTreasury);
    }

    // ---------------------------------------------------------------- governance

    /// @notice Sets the price of new credit. Governance only.
    /// @param pricePerGB_ X0T wei per 1e9 bytes (non-zero).
    function setPricePerGB(uint256 pricePerGB_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setPrice(pricePerGB_);
    }

    /// @notice Sets the treasury. Governance only.
    /// @param treasury_ The new treasury.
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @notice Sets the EpochRewards contract that consumes credit. Governance only.
    /// @param epochRewards_ The new EpochRewards.
    function setEpochRewards(address epochRewards_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (epochRewards_ == address(0)) revert ZeroAddress();
        emit EpochRewardsChanged(epochRewards, epochRewards_);
        epochRewards = epochRewards_;
    }

    // ---------------------------------------------------------------- views

    /// @notice `account`'s lock for `relayer`.
    function lockOf(address account, address relayer) external view returns (Lock memory) {
        return _locks[account][relayer];
    }

    /// @notice What `key`'s receipts have been paid by `relayer`'s lock so far (cumulative).
    function channelOf(address key, address relayer) external view returns (Channel memory) {
        return _channels[key][relayer];
    }

    /// @notice True if `key` has used lock nonce `nonce`.
    function nonceUsed(address key, uint256 nonce) external view returns (bool) {
        return (_usedNonces[key][nonce >> 8] >> (nonce & 0xff)) & 1 == 1;
    }

    /// @notice EIP-712 digest a client key signs to be authorised for `account` with `capPerEpoch`.
    function keyAuthorizationDigest(address account, address key, uint96 capPerEpoch) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(KEY_AUTHORIZATION_TYPEHASH, account, key, capPerEpoch)));
    }

    /// @notice EIP-712 digest of a lock request, as a client key signs it.
    function lockDigest(
        address relayer,
        uint96 bytes_,
        uint64 expiresEpoch,
        uint256 nonce
    ) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(LOCK_TYPEHASH, relayer, bytes_, expiresEpoch, nonce)));
    }

    // ---------------------------------------------------------------- internals

    /// @dev Pulls first and credits what arrived, so a fee on the token can never leave the
    /// escrow short; `nonReentrant` on every caller covers the interaction-before-effects.
    function _buy(uint256 amount) private returns (uint256 bytesBought) {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 paid = token.balanceOf(address(this)) - before;
        uint256 price = pricePerGB;
        bytesBought = (paid * BYTES_PER_GB) / price;
        if (bytesBought == 0) revert PurchaseTooSmall(paid, price);
        Credit storage credit = creditOf[msg.sender];
        credit.bytesLeft += SafeCast.toUint128(bytesBought);
        credit.escrow += SafeCast.toUint128(paid);
        emit CreditPurchased(msg.sender, paid, bytesBought, price);
    }

    function _ownKey(address key) private view returns (ClientKey storage entry) {
        entry = clientKeys[key];
        if (entry.account != msg.sender) revert NotKeyAccount(key, entry.account, msg.sender);
        if (entry.revokedAfter != NOT_REVOKED) revert KeyAlreadyRevoked(key);
    }

    /// @dev Checks a signed request and its key's cap, then locks. Returns the custom error that
    /// refused it, or nothing. Nonce and cap are spent only when the lock succeeds.
    function _lockFromRequest(LockRequest calldata q) private returns (bytes memory) {
        ClientKey storage entry = clientKeys[q.key];
        address account = entry.account;
        if (account == address(0)) return abi.encodeWithSelector(UnknownClientKey.selector, q.key);
        uint64 current = IEpochClock(epochRewards).currentEpoch();
        if (entry.revokedAfter != NOT_REVOKED)
            return abi.encodeWithSelector(KeyRevoked.selector, q.key, entry.revokedAfter, current);
        uint256 word = q.nonce >> 8;
        uint256 bit = 1 << (q.nonce & 0xff);
        uint256 bits = _usedNonces[q.key][word];
        if (bits & bit != 0) return abi.encodeWithSelector(NonceUsed.selector, q.key, q.nonce);
        (address recovered, , ) = ECDSA.tryRecover(lockDigest(q.relayer, q.bytes_, q.expiresEpoch, q.nonce), q.r, q.vs);
        if (recovered != q.key) return abi.encodeWithSelector(InvalidLockSignature.selector, q.key, recovered);
        uint256 spent = entry.spendEpoch == current ? entry.spentInEpoch : 0;
        if (spent + q.bytes_ > entry.capPerEpoch)
            return abi.encodeWithSelector(KeyCapExceeded.selector, q.key, spent, q.bytes_, entry.capPerEpoch);
        bytes memory reason = _lock(account, q.key, q.relayer, q.bytes_, q.expiresEpoch, MAX_KEY_LOCK_EPOCHS);
        if (reason.length != 0) return reason;
        _usedNonces[q.key][word] = bits | bit;
        entry.spendEpoch = current;
        entry.spentInEpoch = uint96(spent + q.bytes_);
        return "";
    }

    /// @dev Moves `bytes_` and their escrow from `account`'s free credit into its lock for `relayer`,
    /// with an expiry at most `maxEpochs` ahead. Returns the custom error that refused it, or nothing.
    function _lock(
        address account,
        address key,
        address relayer,
        uint96 bytes_,
        uint64 expiresEpoch,
        uint64 maxEpochs
    ) private returns (bytes memory reason) {
        reason = _checkLock(account, relayer, bytes_, expiresEpoch, maxEpochs);
        if (reason.length != 0) return reason;
        Credit storage c = creditOf[account];
        Credit memory free = c;
        uint128 value =
            bytes_ == free.bytesLeft ? free.escrow : uint128((uint256(free.escrow) * bytes_) / free.bytesLeft);
        c.bytesLeft = free.bytesLeft - bytes_;
        c.escrow = free.escrow - value;
        Lock storage held = _locks[account][relayer];
        Lock memory m = held;
        held.bytesLeft = m.bytesLeft + bytes_; // room checked by _checkLock
        // A lock's escrow never exceeds the token's supply cap, far below 2^96.
        held.escrow = m.escrow + uint96(value);
        if (expiresEpoch > m.expiresEpoch) held.expiresEpoch = expiresEpoch;
        else expiresEpoch = m.expiresEpoch;
        emit CreditLocked(account, relayer, key, bytes_, value, expiresEpoch);
    }

    /// @dev Why `account` cannot lock `bytes_` for `relayer` until `expiresEpoch`, or nothing.
    function _checkLock(
        address account,
        address relayer,
        uint96 bytes_,
        uint64 expiresEpoch,
        uint64 maxEpochs
    ) private view returns (bytes memory) {
        if (relayer == address(0)) return abi.encodeWithSelector(ZeroAddress.selector);
        if (bytes_ == 0) return abi.encodeWithSelector(ZeroAmount.selector);
        uint64 current = IEpochClock(epochRewards).currentEpoch();
        uint64 latest = current + maxEpochs;
        if (expiresEpoch < current || expiresEpoch > latest)
            return abi.encodeWithSelector(InvalidExpiry.selector, expiresEpoch, current, latest);
        uint256 free = creditOf[account].bytesLeft;
        if (bytes_ > free) return abi.encodeWithSelector(InsufficientCredit.selector, account, free, bytes_);
        uint256 locked = uint256(_locks[account][relayer].bytesLeft) + bytes_;
        if (locked > type(uint96).max) return abi.encodeWithSelector(LockTooLarge.selector, locked);
        return "";
    }

    /// @dev Pays the part of the key's cumulative (`cells`, `bytes_`) above what its channel already
    /// paid, at most what the account's lock for the relay holds; cells in the same proportion.
    function _pay(
        Lock storage held,
        Channel storage channel,
        address account,
        address relayer,
        uint64 epoch,
        uint64 cells,
        uint96 bytes_
    ) private returns (uint256 paid, uint256 newCells, uint256 value) {
        Lock memory m = held;
        Channel memory c = channel;
        if (epoch > m.expiresEpoch) revert LockExpired(account, relayer, epoch, m.expiresEpoch);
        if (bytes_ <= c.bytesPaid) revert NothingNewToPay(account, relayer, cells, c.bytesPaid);
        uint256 due = bytes_ - c.bytesPaid;
        if (m.bytesLeft == 0) revert InsufficientCredit(account, 0, due);
        uint256 dueCells = cells > c.cellsPaid ? cells - c.cellsPaid : 0;
        paid = due < m.bytesLeft ? due : m.bytesLeft;
        newCells = paid == due ? dueCells : (dueCells * paid) / due;
        value = paid == m.bytesLeft ? m.escrow : (uint256(m.escrow) * paid) / m.bytesLeft;
        held.bytesLeft = uint96(m.bytesLeft - paid);
        held.escrow = uint96(m.escrow - value);
        channel.bytesPaid = uint96(c.bytesPaid + paid);
        channel.cellsPaid = uint64(c.cellsPaid + newCells);
    }

    function _setPrice(uint256 pricePerGB_) private {
        if (pricePerGB_ == 0) revert ZeroAmount();
        emit PriceChanged(pricePerGB, pricePerGB_);
        pricePerGB = pricePerGB_;
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert ZeroAddress();
        emit TreasuryChanged(treasury, treasury_);
        treasury = treasury_;
    }
}
