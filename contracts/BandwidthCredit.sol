// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEpochClock} from "./interfaces/IEpochClock.sol";

/// @title BandwidthCredit: prepaid bytes, bought with X0T and burned as they are used
/// @notice An account buys bytes at `pricePerGB` X0T per 1e9 bytes (one transaction with an
/// EIP-2612 permit). The account authorises client keys (the keys its local node signs relay
/// receipts with) and may revoke them. When EpochRewards accepts a receipt it consumes the bytes;
/// the X0T paid for them is burned at settlement, except `treasuryShareBps` sent to the treasury.
/// @dev An account's credit is (bytes left, X0T escrowed for them). Consuming b bytes releases
/// escrow * b / bytesLeft X0T, the average price the account actually paid, so a later price change
/// never re-prices bytes already bought and the value released never exceeds what was paid.
/// A client key is bound to the first account that authorises it, forever: a revoked key cannot
/// move to another account, so receipts it signed earlier can never debit someone else.
/// Roles: DEFAULT_ADMIN_ROLE (the governance timelock) sets the price, the treasury share, the
/// treasury and the EpochRewards contract; only that EpochRewards contract may consume credit.
/// The contract must be fee-exempt in X0T; purchases are credited with what actually arrived.
contract BandwidthCredit is AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Bytes in one priced unit (a decimal gigabyte).
    uint256 public constant BYTES_PER_GB = 1e9;
    /// @notice Highest share of consumed credit governance may send to the treasury (50%).
    uint16 public constant MAX_TREASURY_SHARE_BPS = 5_000;
    /// @notice EIP-712 type a client key signs to prove the account may authorise it.
    bytes32 public constant KEY_AUTHORIZATION_TYPEHASH = keccak256(
        "ClientKeyAuthorization(address account,address key)"
    );
    uint16 private constant BPS = 10_000;
    uint64 private constant NOT_REVOKED = type(uint64).max;

    struct Credit {
        uint128 bytesLeft;
        uint128 escrow; // X0T held for bytesLeft
    }

    struct ClientKey {
        address account; // fixed at authorisation
        uint64 revokedFromEpoch; // receipts for this epoch and later are refused
    }

    /// @notice The X0T token.
    IERC20 public immutable token;
    /// @notice X0T (wei) per BYTES_PER_GB for new purchases.
    uint256 public pricePerGB;
    /// @notice Share of consumed credit sent to the treasury instead of burned, in basis points.
    uint16 public treasuryShareBps;
    /// @notice The treasury (the DAO's multisig).
    address public treasury;
    /// @notice The contract that consumes credit and tells the epoch.
    address public epochRewards;
    /// @notice Consumed X0T not yet burned or sent to the treasury.
    uint256 public unsettled;

    /// @notice Credit of each account.
    mapping(address account => Credit) public creditOf;
    /// @notice Account and revocation epoch of each client key.
    mapping(address key => ClientKey) public clientKeys;

    /// @notice `account` bought `bytesBought` bytes for `paid` X0T.
    event CreditPurchased(address indexed account, uint256 paid, uint256 bytesBought, uint256 pricePerGB);
    /// @notice `account` authorised `key` to sign receipts against its credit.
    event ClientKeyAuthorized(address indexed account, address indexed key);
    /// @notice `key` signs for `account` no more from `fromEpoch` on.
    event ClientKeyRevoked(address indexed account, address indexed key, uint64 fromEpoch);
    /// @notice A receipt of `relayer` for `epoch` consumed `bytesUsed` of `account`'s credit, worth `value` X0T.
    event CreditConsumed(
        address indexed account,
        address indexed relayer,
        uint64 indexed epoch,
        address key,
        uint256 bytesUsed,
        uint256 value
    );
    /// @notice Consumed credit was settled: `burned` X0T burned, `toTreasury` sent to the treasury.
    event CreditSettled(uint256 burned, uint256 toTreasury);
    /// @notice Governance changed the price of new credit.
    event PriceChanged(uint256 previous, uint256 current);
    /// @notice Governance changed the treasury share of consumed credit.
    event TreasuryShareChanged(uint16 previous, uint16 current);
    /// @notice Governance changed the treasury.
    event TreasuryChanged(address previous, address current);
    /// @notice Governance changed the EpochRewards contract.
    event EpochRewardsChanged(address previous, address current);

    error ZeroAddress();
    error ZeroAmount();
    error PurchaseTooSmall(uint256 paid, uint256 pricePerGB);
    error TreasuryShareTooHigh(uint16 bps, uint16 max);
    error KeyAlreadyAuthorized(address key, address account);
    error InvalidKeyProof(address key, address signer);
    error UnknownClientKey(address key);
    error NotKeyAccount(address key, address account, address caller);
    error KeyAlreadyRevoked(address key, uint64 fromEpoch);
    error KeyRevoked(address key, uint64 revokedFromEpoch, uint64 epoch);
    error InsufficientCredit(address account, uint256 bytesLeft, uint256 bytesNeeded);
    error OnlyEpochRewards(address caller);

    /// @param token_ The X0T token.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance).
    /// @param pricePerGB_ Initial price, X0T wei per 1e9 bytes (1e18 = 1 X0T per GB).
    /// @param treasuryShareBps_ Initial treasury share of consumed credit.
    /// @param treasury_ The treasury.
    constructor(
        IERC20 token_,
        address admin,
        uint256 pricePerGB_,
        uint16 treasuryShareBps_,
        address treasury_
    ) EIP712("x0tta6bl4 BandwidthCredit", "1") {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setPrice(pricePerGB_);
        _setTreasuryShare(treasuryShareBps_);
        _setTreasury(treasury_);
    }

    // ---------------------------------------------------------------- buyers

    /// @notice Buys credit for the caller with `amount` X0T approved beforehand.
    /// @param amount X0T (wei) to spend.
    /// @return bytesBought Bytes added to the caller's credit.
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
    /// @return bytesBought Bytes added to the caller's credit.
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

    /// @notice Lets `key` sign relay receipts paid from the caller's credit.
    /// @param key The client key (an address).
    /// @param proof EIP-712 signature by `key` over ClientKeyAuthorization(caller, key).
    function authorizeClientKey(address key, bytes calldata proof) external {
        if (key == address(0)) revert ZeroAddress();
        ClientKey storage entry = clientKeys[key];
        if (entry.account != address(0)) revert KeyAlreadyAuthorized(key, entry.account);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(KEY_AUTHORIZATION_TYPEHASH, msg.sender, key)));
        (address signer, , ) = ECDSA.tryRecover(digest, proof);
        if (signer != key) revert InvalidKeyProof(key, signer);
        entry.account = msg.sender;
        entry.revokedFromEpoch = NOT_REVOKED;
        emit ClientKeyAuthorized(msg.sender, key);
    }

    /// @notice Stops `key` from signing for the caller from the next epoch on. Receipts for the
    /// current and earlier epochs stay payable, so relays are paid for traffic already carried.
    /// @param key A key the caller authorised.
    function revokeClientKey(address key) external {
        ClientKey storage entry = clientKeys[key];
        if (entry.account != msg.sender) revert NotKeyAccount(key, entry.account, msg.sender);
        if (entry.revokedFromEpoch != NOT_REVOKED) revert KeyAlreadyRevoked(key, entry.revokedFromEpoch);
        uint64 fromEpoch = IEpochClock(epochRewards).currentEpoch() + 1;
        entry.revokedFromEpoch = fromEpoch;
        emit ClientKeyRevoked(msg.sender, key, fromEpoch);
    }

    // ---------------------------------------------------------------- EpochRewards

    /// @notice Consumes `bytesUsed` of the credit behind `key` for a receipt of `relayer` in `epoch`.
    /// Only EpochRewards. Reverts, changing nothing, if the key is unknown or revoked for `epoch`
    /// or the credit is short.
    /// @param key Client key that signed the receipt.
    /// @param relayer Relayer paid by the receipt.
    /// @param epoch Epoch of the receipt.
    /// @param bytesUsed Bytes to consume (the receipt's bytes divided by its hop count).
    /// @return value X0T released for those bytes; it waits in `unsettled` until `settle`.
    function consume(address key, address relayer, uint64 epoch, uint256 bytesUsed) external returns (uint256 value) {
        if (msg.sender != epochRewards) revert OnlyEpochRewards(msg.sender);
        ClientKey memory entry = clientKeys[key];
        if (entry.account == address(0)) revert UnknownClientKey(key);
        if (epoch >= entry.revokedFromEpoch) revert KeyRevoked(key, entry.revokedFromEpoch, epoch);
        Credit storage credit = creditOf[entry.account];
        uint256 bytesLeft = credit.bytesLeft;
        if (bytesUsed == 0) revert ZeroAmount();
        if (bytesUsed > bytesLeft) revert InsufficientCredit(entry.account, bytesLeft, bytesUsed);
        uint256 escrow = credit.escrow;
        value = bytesUsed == bytesLeft ? escrow : (escrow * bytesUsed) / bytesLeft;
        credit.bytesLeft = uint128(bytesLeft - bytesUsed);
        credit.escrow = uint128(escrow - value);
        unsettled += value;
        emit CreditConsumed(entry.account, relayer, epoch, key, bytesUsed, value);
    }

    /// @notice Burns consumed credit and sends the treasury its share. Anyone may call;
    /// EpochRewards calls it after every batch.
    function settle() external {
        uint256 amount = unsettled;
        if (amount == 0) return;
        uint256 toTreasury = (amount * treasuryShareBps) / BPS;
        uint256 burned = amount - toTreasury;
        unsettled = 0;
        emit CreditSettled(burned, toTreasury);
        ERC20Burnable(address(token)).burn(burned);
        if (toTreasury != 0) token.safeTransfer(treasury, toTreasury);
    }

    // ---------------------------------------------------------------- governance

    /// @notice Sets the price of new credit. Governance only.
    /// @param pricePerGB_ X0T wei per 1e9 bytes (non-zero).
    function setPricePerGB(uint256 pricePerGB_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setPrice(pricePerGB_);
    }

    /// @notice Sets the treasury share of consumed credit. Governance only.
    /// @param bps Basis points, at most MAX_TREASURY_SHARE_BPS.
    function setTreasuryShareBps(uint16 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasuryShare(bps);
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

    /// @notice EIP-712 digest a client key signs to be authorised for `account`.
    function keyAuthorizationDigest(address account, address key) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(KEY_AUTHORIZATION_TYPEHASH, account, key)));
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

    function _setPrice(uint256 pricePerGB_) private {
        if (pricePerGB_ == 0) revert ZeroAmount();
        emit PriceChanged(pricePerGB, pricePerGB_);
        pricePerGB = pricePerGB_;
    }

    function _setTreasuryShare(uint16 bps) private {
        if (bps > MAX_TREASURY_SHARE_BPS) revert TreasuryShareTooHigh(bps, MAX_TREASURY_SHARE_BPS);
        emit TreasuryShareChanged(treasuryShareBps, bps);
        treasuryShareBps = bps;
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert ZeroAddress();
        emit TreasuryChanged(treasury, treasury_);
        treasury = treasury_;
    }
}
