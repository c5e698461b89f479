// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";

/// @title RelayerRegistry: staked relay operators and their node records
/// @notice An operator stakes X0T (at least `minStake`) to publish one node record: endpoint,
/// region, hash of the node's static public keys (X25519 || ML-KEM-768) and the address the node
/// signs with. Stake leaves through `unbond` then, after `unbondingDelay`, `withdraw`; tokens that
/// are unbonding can still be slashed. Nodes are listed from events or `nodesPage`.
/// Keys hash, endpoint and signer are each unique across operators, and the signer must consent
/// (an EIP-712 signature) so that nobody can squat another operator's signing address.
/// `minStake` is checkpointed by time so that a later change never strands receipts of an epoch
/// already served (`isActiveAt`). Proposing a slash of an operator on `slashGovernor` freezes its
/// withdrawals until the vote and the timelock delay are over (`freezeForSlash`, called by the
/// governor in the proposing transaction), so a slash cannot be escaped by unbonding.
/// @dev Roles: DEFAULT_ADMIN_ROLE (the governance timelock) sets `minStake`, `unbondingDelay`,
/// `slashRecipient`, `slashGovernor` and slashes. Operators act only on their own record.
/// The contract must be fee-exempt in X0T; stake is credited with what actually arrived.
contract RelayerRegistry is IRelayerRegistry, AccessControl, EIP712, ReentrancyGuardTransient {
    using Checkpoints for Checkpoints.Trace208;
    using SafeERC20 for IERC20;

    /// @notice Longest unbonding delay governance may set.
    uint48 public constant MAX_UNBONDING_DELAY = 90 days;
    /// @notice Longest endpoint string ("host:port"), in bytes.
    uint256 public constant MAX_ENDPOINT_LENGTH = 128;
    /// @notice Longest a freeze may reach from the moment it is set: a slash proposal's vote and
    /// timelock fit well within it, and a proposal that is never executed cannot freeze for longer.
    uint48 public constant MAX_FREEZE_DURATION = 30 days;
    /// @notice EIP-712 type a node's signer signs to agree to sign for `operator`.
    bytes32 public constant SIGNER_CONSENT_TYPEHASH = keccak256("SignerConsent(address operator,address signer)");

    struct Node {
        address signer; // hot key of the running node: signs proofs and attestations, may submit
        bytes2 region; // ISO 3166-1 alpha-2, upper case ("DE")
        uint48 unbondingReleaseAt; // when `unbonding` may be withdrawn
        uint32 registeredAt; // timestamp of the first registration
        bytes32 keysHash; // sha256(x25519 public key || ML-KEM-768 encapsulation key)
        uint128 stake; // bonded, counts towards minStake
        uint128 unbonding; // leaving, still slashable
        string endpoint; // "host:port" of the node's relay listener
    }

    /// @notice The staked token (X0T).
    IERC20 public immutable token;
    /// @notice Seconds between `unbond` and the earliest `withdraw`.
    uint48 public unbondingDelay;
    /// @notice Where slashed stake goes (the treasury).
    address public slashRecipient;
    /// @notice The governor that freezes an operator's withdrawals when a slash of it is proposed
    /// (zero: none).
    IGovernor public slashGovernor;

    Checkpoints.Trace208 private _minStakes;
    mapping(address operator => Node) private _nodes;
    mapping(address signer => address operator) private _operatorOf;
    mapping(bytes32 keysHash => address operator) private _keysOwner;
    mapping(bytes32 endpointHash => address operator) private _endpointOwner;
    /// @notice Until when each operator's unbonded stake cannot be withdrawn (a slash is pending).
    mapping(address operator => uint48 until) public frozenUntil;
    address[] private _operators;

    /// @notice An operator published its first node record.
    event NodeRegistered(
        address indexed operator,
        address indexed signer,
        bytes2 region,
        bytes32 keysHash,
        string endpoint,
        uint256 stake
    );
    /// @notice An operator changed its node record.
    event NodeUpdated(
        address indexed operator,
        address indexed signer,
        bytes2 region,
        bytes32 keysHash,
        string endpoint
    );
    /// @notice Stake was added.
    event StakeAdded(address indexed operator, uint256 amount, uint256 stake);
    /// @notice Stake started unbonding; the whole pending amount is released at `releaseAt`.
    event Unbonded(address indexed operator, uint256 amount, uint256 stake, uint256 unbonding, uint48 releaseAt);
    /// @notice Unbonded stake was paid out.
    event Withdrawn(address indexed operator, uint256 amount);
    /// @notice The operator left: no stake, nothing unbonding; its keys hash, endpoint and signer are free.
    event NodeDeregistered(address indexed operator);
    /// @notice Governance slashed an operator.
    event Slashed(address indexed operator, uint256 fromStake, uint256 fromUnbonding, bytes32 indexed reason);
    /// @notice Governance changed the minimum stake.
    event MinStakeChanged(uint256 previous, uint256 current);
    /// @notice Governance changed the unbonding delay.
    event UnbondingDelayChanged(uint48 previous, uint48 current);
    /// @notice Governance changed where slashed stake goes.
    event SlashRecipientChanged(address previous, address current);
    /// @notice Governance changed the governor whose slash proposals freeze withdrawals.
    event SlashGovernorChanged(address previous, address current);
    /// @notice A slash of `operator` was proposed (`proposalId`): no withdrawal before `until`.
    event WithdrawalsFrozen(address indexed operator, uint256 indexed proposalId, uint48 until);
    /// @notice Governance lifted `operator`'s freeze.
    event WithdrawalsUnfrozen(address indexed operator);

    error AlreadyRegistered(address operator);
    error NotRegistered(address operator);
    error StakeBelowMinimum(uint256 stake, uint256 minStake);
    error SignerInUse(address signer, address operator);
    error KeysHashInUse(bytes32 keysHash, address operator);
    error EndpointInUse(string endpoint, address operator);
    error InvalidSignerConsent(address signer, address recovered);
    error WithdrawalsFrozenUntil(address operator, uint48 until);
    error OnlySlashGovernor(address caller);
    error InvalidEndpoint(uint256 length, uint256 maxLength);
    error InvalidRegion(bytes2 region);
    error ZeroKeysHash();
    error ZeroAddress();
    error ZeroAmount();
    error UnbondExceedsStake(uint256 amount, uint256 stake);
    error NothingToWithdraw(address operator);
    error StillUnbonding(uint48 releaseAt, uint256 now_);
    error UnbondingDelayTooLong(uint48 delay, uint48 max);

    /// @param token_ The X0T token.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance).
    /// @param minStake_ Initial minimum stake, in wei.
    /// @param unbondingDelay_ Initial unbonding delay, in seconds.
    /// @param slashRecipient_ Receiver of slashed stake (the treasury).
    constructor(
        IERC20 token_,
        address admin,
        uint256 minStake_,
        uint48 unbondingDelay_,
        address slashRecipient_
    ) EIP712("x0tta6bl4 RelayerRegistry", "1") {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setMinStake(minStake_);
        _setUnbondingDelay(unbondingDelay_);
        _setSlashRecipient(slashRecipient_);
    }

    // ---------------------------------------------------------------- operators

    /// @notice Stakes `amount` (approved beforehand) and publishes the caller's node record.
    /// @param endpoint "host:port" of the relay listener, 1..128 bytes.
    /// @param region ISO 3166-1 alpha-2 code in upper case.
    /// @param keysHash sha256 of the node's static X25519 || ML-KEM-768 public keys.
    /// @param signer Address the node signs with; unique across operators.
    /// @param signerConsent EIP-712 signature by `signer` over SignerConsent(caller, signer).
    /// @param amount Stake to pull from the caller; the stake must reach `minStake`.
    function register(
        string calldata endpoint,
        bytes2 region,
        bytes32 keysHash,
        address signer,
        bytes calldata signerConsent,
        uint256 amount
    ) external nonReentrant {
        _register(endpoint, region, keysHash, signer, signerConsent, amount);
    }

    /// @notice As `register`, with an EIP-2612 permit for `amount` in the same transaction.
    /// @dev A permit that fails (for example front-run) is ignored if the allowance is already there.
    function registerWithPermit(
        string calldata endpoint,
        bytes2 region,
        bytes32 keysHash,
        address signer,
        bytes calldata signerConsent,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        _permit(amount, deadline, v, r, s);
        _register(endpoint, region, keysHash, signer, signerConsent, amount);
    }

    /// @notice Replaces the caller's node record (stake unchanged).
    /// @param endpoint New "host:port".
    /// @param region New region code.
    /// @param keysHash New hash of the static public keys.
    /// @param signer New signing address (the old one is released).
    /// @param signerConsent Signature of a new `signer` over SignerConsent(caller, signer); ignored
    /// when the signer does not change.
    function updateNode(
        string calldata endpoint,
        bytes2 region,
        bytes32 keysHash,
        address signer,
        bytes calldata signerConsent
    ) external {
        Node storage node = _registered(msg.sender);
        // Only a staked node may move its claims: a record left with no stake cannot squat others'.
        uint256 minimum = minStake();
        if (node.stake < minimum) revert StakeBelowMinimum(node.stake, minimum);
        _checkRecord(endpoint, region, keysHash);
        address oldSigner = node.signer;
        if (signer != oldSigner) {
            _claimSigner(signer, msg.sender, signerConsent);
            delete _operatorOf[oldSigner];
            node.signer = signer;
        }
        _moveKeysAndEndpoint(node, keysHash, endpoint);
        node.region = region;
        emit NodeUpdated(msg.sender, signer, region, keysHash, endpoint);
    }

    /// @notice Adds `amount` (approved beforehand) to the caller's stake.
    /// @param amount Tokens to pull from the caller.
    function addStake(uint256 amount) external nonReentrant {
        Node storage node = _registered(msg.sender);
        uint256 received = _pull(amount);
        uint256 stake = node.stake + received;
        node.stake = uint128(stake);
        emit StakeAdded(msg.sender, received, stake);
    }

    /// @notice Starts unbonding `amount` of the caller's stake. What remains must be zero (the node
    /// goes inactive) or at least `minStake`. The whole unbonding balance is released
    /// `unbondingDelay` seconds after the latest call.
    /// @param amount Tokens to unbond.
    function unbond(uint256 amount) external {
        Node storage node = _registered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 stake = node.stake;
        if (amount > stake) revert UnbondExceedsStake(amount, stake);
        uint256 remaining = stake - amount;
        uint256 minimum = minStake();
        if (remaining != 0 && remaining < minimum) revert StakeBelowMinimum(remaining, minimum);
        uint256 unbonding = node.unbonding + amount;
        uint48 releaseAt = uint48(block.timestamp) + unbondingDelay;
        node.stake = uint128(remaining);
        node.unbonding = uint128(unbonding);
        node.unbondingReleaseAt = releaseAt;
        emit Unbonded(msg.sender, amount, remaining, unbonding, releaseAt);
    }

    /// @notice Pays out the caller's unbonded stake once its delay has passed and no live slash
    /// proposal freezes it. An operator left with no stake at all is deregistered: its keys hash,
    /// endpoint and signer become free for others, and it may register again later.
    function withdraw() external {
        Node storage node = _nodes[msg.sender];
        uint256 amount = node.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < node.unbondingReleaseAt) revert StillUnbonding(node.unbondingReleaseAt, block.timestamp);
        uint48 until = frozenUntil[msg.sender];
        if (block.timestamp < until) revert WithdrawalsFrozenUntil(msg.sender, until);
        node.unbonding = 0;
        if (node.stake == 0 && node.signer != address(0)) {
            delete _operatorOf[node.signer];
            delete _keysOwner[node.keysHash];
            delete _endpointOwner[keccak256(bytes(node.endpoint))];
            node.signer = address(0);
            emit NodeDeregistered(msg.sender);
        }
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Freezes `operator`'s withdrawals until `until` (at most MAX_FREEZE_DURATION from now;
    /// a later freeze only ever extends it). Only `slashGovernor`, which calls it in the same
    /// transaction that creates a proposal to slash the operator, so that no withdrawal can slip
    /// between the proposal and the freeze.
    /// @param operator The operator a proposal would slash.
    /// @param proposalId The proposal.
    /// @param until When the proposal's vote and timelock delay are over (plus a margin).
    function freezeForSlash(address operator, uint256 proposalId, uint48 until) external {
        if (msg.sender != address(slashGovernor)) revert OnlySlashGovernor(msg.sender);
        uint48 latest = uint48(block.timestamp) + MAX_FREEZE_DURATION;
        if (until > latest) until = latest;
        if (until > frozenUntil[operator]) frozenUntil[operator] = until;
        emit WithdrawalsFrozen(operator, proposalId, frozenUntil[operator]);
    }

    // ---------------------------------------------------------------- governance

    /// @notice Takes `amount` from an operator's stake, then from its unbonding balance, and sends
    /// it to `slashRecipient`; if less is left, takes all that is left (so that a proposal voted for
    /// more than remains still executes). Governance only.
    /// @param operator The operator to slash.
    /// @param amount Tokens to take at most.
    /// @param reason Short reason or hash of the proposal that decided it.
    function slash(address operator, uint256 amount, bytes32 reason) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Node storage node = _registered(operator);
        if (amount == 0) revert ZeroAmount();
        uint256 stake = node.stake;
        uint256 unbonding = node.unbonding;
        if (amount > stake + unbonding) amount = stake + unbonding;
        uint256 fromStake = amount < stake ? amount : stake;
        uint256 fromUnbonding = amount - fromStake;
        node.stake = uint128(stake - fromStake);
        node.unbonding = uint128(unbonding - fromUnbonding);
        emit Slashed(operator, fromStake, fromUnbonding, reason);
        token.safeTransfer(slashRecipient, amount);
    }

    /// @notice Sets the stake a node needs to be active from now on. Nodes below a raised minimum go
    /// inactive until they add stake; epochs that ended before the change keep the old minimum.
    /// Governance only.
    /// @param minStake_ New minimum, in wei (non-zero).
    function setMinStake(uint256 minStake_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMinStake(minStake_);
    }

    /// @notice Sets the unbonding delay for future `unbond` calls. Governance only.
    /// @param delay Seconds, at most MAX_UNBONDING_DELAY.
    function setUnbondingDelay(uint48 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setUnbondingDelay(delay);
    }

    /// @notice Sets the governor that freezes withdrawals when a slash is proposed (zero: none).
    /// Governance only.
    /// @param governor The governor.
    function setSlashGovernor(IGovernor governor) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit SlashGovernorChanged(address(slashGovernor), address(governor));
        slashGovernor = governor;
    }

    /// @notice Lifts `operator`'s freeze (a slash proposed to harass it). Governance only.
    /// @param operator The operator.
    function unfreeze(address operator) external onlyRole(DEFAULT_ADMIN_ROLE) {
        frozenUntil[operator] = 0;
        emit WithdrawalsUnfrozen(operator);
    }

    /// @notice Sets where slashed stake goes. Governance only.
    /// @param recipient The new recipient (the treasury).
    function setSlashRecipient(address recipient) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setSlashRecipient(recipient);
    }

    // ---------------------------------------------------------------- views

    /// @notice The node record of `operator` (all zero if never registered).
    function getNode(address operator) external view returns (Node memory) {
        return _nodes[operator];
    }

    /// @notice Stake a node needs to be active now.
    function minStake() public view returns (uint256) {
        return _minStakes.latest();
    }

    /// @notice Stake a node needed to be active at `timestamp`.
    function minStakeAt(uint256 timestamp) public view returns (uint256) {
        return _minStakes.upperLookupRecent(uint48(timestamp));
    }

    /// @inheritdoc IRelayerRegistry
    function isActive(address operator) public view returns (bool) {
        Node storage node = _nodes[operator];
        return node.signer != address(0) && node.stake >= minStake();
    }

    /// @inheritdoc IRelayerRegistry
    function signerOf(address operator) external view returns (address signer, bool active) {
        Node storage node = _nodes[operator];
        return (node.signer, node.signer != address(0) && node.stake >= minStake());
    }

    /// @inheritdoc IRelayerRegistry
    function isActiveAt(address operator, uint256 timestamp) external view returns (bool) {
        Node storage node = _nodes[operator];
        return
            node.signer != address(0) &&
            node.registeredAt <= timestamp &&
            uint256(node.stake) + node.unbonding >= minStakeAt(timestamp);
    }

    /// @inheritdoc IRelayerRegistry
    function registeredAt(address operator) external view returns (uint256) {
        return _nodes[operator].registeredAt;
    }

    /// @notice The operator that uses `keysHash`, or zero.
    function keysOwner(bytes32 keysHash) external view returns (address) {
        return _keysOwner[keysHash];
    }

    /// @notice The operator that uses `endpoint`, or zero.
    function endpointOwner(string calldata endpoint) external view returns (address) {
        return _endpointOwner[keccak256(bytes(endpoint))];
    }

    /// @notice EIP-712 digest that `signer` signs to agree to sign for `operator`.
    function signerConsentDigest(address operator, address signer) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SIGNER_CONSENT_TYPEHASH, operator, signer)));
    }

    /// @inheritdoc IRelayerRegistry
    function operatorOf(address signer) external view returns (address) {
        return _operatorOf[signer];
    }

    /// @notice Number of operators that ever registered.
    function nodeCount() external view returns (uint256) {
        return _operators.length;
    }

    /// @notice Operators and records, `limit` at most, from position `offset` in registration order.
    /// @param offset First position.
    /// @param limit Largest number of entries to return.
    function nodesPage(
        uint256 offset,
        uint256 limit
    ) external view returns (address[] memory operators, Node[] memory records) {
        uint256 total = _operators.length;
        uint256 end = offset >= total ? offset : (limit > total - offset ? total : offset + limit);
        operators = new address[](end - offset);
        records = new Node[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            operators[i - offset] = _operators[i];
            records[i - offset] = _nodes[_operators[i]];
        }
    }

    // ---------------------------------------------------------------- internals

    function _register(
        string calldata endpoint,
        bytes2 region,
        bytes32 keysHash,
        address signer,
        bytes calldata signerConsent,
        uint256 amount
    ) private {
        Node storage node = _nodes[msg.sender];
        if (node.signer != address(0)) revert AlreadyRegistered(msg.sender);
        _checkRecord(endpoint, region, keysHash);
        _claimSigner(signer, msg.sender, signerConsent);
        _claimKeys(keysHash, msg.sender);
        _claimEndpoint(endpoint, keccak256(bytes(endpoint)), msg.sender);
        uint256 received = _pull(amount);
        uint256 minimum = minStake();
        if (received < minimum) revert StakeBelowMinimum(received, minimum);
        // An operator that left and comes back is listed once.
        if (node.registeredAt == 0) _operators.push(msg.sender);
        node.signer = signer;
        node.region = region;
        node.registeredAt = uint32(block.timestamp);
        node.keysHash = keysHash;
        node.stake = uint128(received);
        node.endpoint = endpoint;
        emit NodeRegistered(msg.sender, signer, region, keysHash, endpoint, received);
    }

    function _registered(address operator) private view returns (Node storage node) {
        node = _nodes[operator];
        if (node.signer == address(0)) revert NotRegistered(operator);
    }

    function _checkRecord(string calldata endpoint, bytes2 region, bytes32 keysHash) private pure {
        bytes calldata raw = bytes(endpoint);
        uint256 length = raw.length;
        if (length == 0 || length > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint(length, MAX_ENDPOINT_LENGTH);
        for (uint256 i; i < length; ++i) {
            if (_isUpper(raw[i])) revert InvalidEndpoint(length, MAX_ENDPOINT_LENGTH);
        }
        if (!_isUpper(region[0]) || !_isUpper(region[1])) revert InvalidRegion(region);
        if (keysHash == bytes32(0)) revert ZeroKeysHash();
    }

    function _isUpper(bytes1 c) private pure returns (bool) {
        return c >= 0x41 && c <= 0x5A;
    }

    function _claimSigner(address signer, address operator, bytes calldata consent) private {
        if (signer == address(0)) revert ZeroAddress();
        address holder = _operatorOf[signer];
        if (holder != address(0)) revert SignerInUse(signer, holder);
        (address recovered, , ) = ECDSA.tryRecover(signerConsentDigest(operator, signer), consent);
        if (recovered != signer) revert InvalidSignerConsent(signer, recovered);
        _operatorOf[signer] = operator;
    }

    /// @dev Moves the record to a new keys hash and endpoint, releasing the old ones.
    function _moveKeysAndEndpoint(Node storage node, bytes32 keysHash, string calldata endpoint) private {
        bytes32 oldKeys = node.keysHash;
        if (keysHash != oldKeys) {
            _claimKeys(keysHash, msg.sender);
            delete _keysOwner[oldKeys];
            node.keysHash = keysHash;
        }
        bytes32 oldEndpoint = keccak256(bytes(node.endpoint));
        bytes32 newEndpoint = keccak256(bytes(endpoint));
        if (newEndpoint != oldEndpoint) {
            _claimEndpoint(endpoint, newEndpoint, msg.sender);
            delete _endpointOwner[oldEndpoint];
            node.endpoint = endpoint;
        }
    }

    function _claimKeys(bytes32 keysHash, address operator) private {
        address holder = _keysOwner[keysHash];
        if (holder != address(0)) revert KeysHashInUse(keysHash, holder);
        _keysOwner[keysHash] = operator;
    }

    /// @dev Endpoints are compared byte for byte; `_checkRecord` refuses upper-case ASCII so that
    /// "Relay.example:9001" cannot squat "relay.example:9001".
    function _claimEndpoint(string calldata endpoint, bytes32 endpointHash, address operator) private {
        address holder = _endpointOwner[endpointHash];
        if (holder != address(0)) revert EndpointInUse(endpoint, holder);
        _endpointOwner[endpointHash] = operator;
    }

    /// @dev Pulls tokens from the caller and returns what arrived (robust to a transfer fee).
    /// It runs before the effects that depend on the amount, so every caller is `nonReentrant`.
    function _pull(uint256 amount) private returns (uint256 received) {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        received = token.balanceOf(address(this)) - before;
    }

    function _permit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) private {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
    }

    function _setMinStake(uint256 minStake_) private {
        if (minStake_ == 0) revert ZeroAmount();
        emit MinStakeChanged(_minStakes.latest(), minStake_);
        _minStakes.push(uint48(block.timestamp), SafeCast.toUint208(minStake_));
    }

    function _setUnbondingDelay(uint48 delay) private {
        if (delay > MAX_UNBONDING_DELAY) revert UnbondingDelayTooLong(delay, MAX_UNBONDING_DELAY);
        emit UnbondingDelayChanged(unbondingDelay, delay);
        unbondingDelay = delay;
    }

    function _setSlashRecipient(address recipient) private {
        if (recipient == address(0)) revert ZeroAddress();
        emit SlashRecipientChanged(slashRecipient, recipient);
        slashRecipient = recipient;
    }
}
