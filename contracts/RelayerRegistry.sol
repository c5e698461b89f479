// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";

/// @title RelayerRegistry: staked relay operators and their node records
/// @notice An operator stakes X0T (at least `minStake`) to publish one node record: endpoint,
/// region, hash of the node's static public keys (X25519 || ML-KEM-768) and the address the node
/// signs with. Stake leaves through `unbond` then, after `unbondingDelay`, `withdraw`; tokens that
/// are unbonding can still be slashed. Nodes are listed from events or `nodesPage`.
/// @dev Roles: DEFAULT_ADMIN_ROLE (the governance timelock) sets `minStake`, `unbondingDelay`,
/// `slashRecipient` and slashes. Operators act only on their own record.
/// The contract must be fee-exempt in X0T; stake is credited with what actually arrived.
contract RelayerRegistry is IRelayerRegistry, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Longest unbonding delay governance may set.
    uint48 public constant MAX_UNBONDING_DELAY = 90 days;
    /// @notice Longest endpoint string ("host:port"), in bytes.
    uint256 public constant MAX_ENDPOINT_LENGTH = 128;

    struct Node {
        address signer; // hot key of the running node: signs proofs and attestations, may submit
        bytes2 region; // ISO 3166-1 alpha-2, upper case ("DE")
        uint48 unbondingReleaseAt; // when `unbonding` may be withdrawn
        bytes32 keysHash; // sha256(x25519 public key || ML-KEM-768 encapsulation key)
        uint128 stake; // bonded, counts towards minStake
        uint128 unbonding; // leaving, still slashable
        string endpoint; // "host:port" of the node's relay listener
    }

    /// @notice The staked token (X0T).
    IERC20 public immutable token;
    /// @notice Stake a node needs to be active.
    uint256 public minStake;
    /// @notice Seconds between `unbond` and the earliest `withdraw`.
    uint48 public unbondingDelay;
    /// @notice Where slashed stake goes (the treasury).
    address public slashRecipient;

    mapping(address operator => Node) private _nodes;
    mapping(address signer => address operator) private _operatorOf;
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
    /// @notice Governance slashed an operator.
    event Slashed(address indexed operator, uint256 fromStake, uint256 fromUnbonding, bytes32 indexed reason);
    /// @notice Governance changed the minimum stake.
    event MinStakeChanged(uint256 previous, uint256 current);
    /// @notice Governance changed the unbonding delay.
    event UnbondingDelayChanged(uint48 previous, uint48 current);
    /// @notice Governance changed where slashed stake goes.
    event SlashRecipientChanged(address previous, address current);

    error AlreadyRegistered(address operator);
    error NotRegistered(address operator);
    error StakeBelowMinimum(uint256 stake, uint256 minStake);
    error SignerInUse(address signer, address operator);
    error InvalidEndpoint(uint256 length, uint256 maxLength);
    error InvalidRegion(bytes2 region);
    error ZeroKeysHash();
    error ZeroAddress();
    error ZeroAmount();
    error UnbondExceedsStake(uint256 amount, uint256 stake);
    error NothingToWithdraw(address operator);
    error StillUnbonding(uint48 releaseAt, uint256 now_);
    error SlashExceedsStake(uint256 amount, uint256 slashable);
    error UnbondingDelayTooLong(uint48 delay, uint48 max);

    /// @param token_ The X0T token.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance).
    /// @param minStake_ Initial minimum stake, in wei.
    /// @param unbondingDelay_ Initial unbonding delay, in seconds.
    /// @param slashRecipient_ Receiver of slashed stake (the treasury).
    constructor(IERC20 token_, address admin, uint256 minStake_, uint48 unbondingDelay_, address slashRecipient_) {
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
    /// @param amount Stake to pull from the caller; the stake must reach `minStake`.
    function register(
        string calldata endpoint,
        bytes2 region,
        bytes32 keysHash,
        address signer,
        uint256 amount
    ) external nonReentrant {
        _register(endpoint, region, keysHash, signer, amount);
    }

    /// @notice As `register`, with an EIP-2612 permit for `amount` in the same transaction.
    /// @dev A permit that fails (for example front-run) is ignored if the allowance is already there.
    function registerWithPermit(
        string calldata endpoint,
        bytes2 region,
        bytes32 keysHash,
        address signer,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        _permit(amount, deadline, v, r, s);
        _register(endpoint, region, keysHash, signer, amount);
    }

    /// @notice Replaces the caller's node record (stake unchanged).
    /// @param endpoint New "host:port".
    /// @param region New region code.
    /// @param keysHash New hash of the static public keys.
    /// @param signer New signing address (the old one is released).
    function updateNode(string calldata endpoint, bytes2 region, bytes32 keysHash, address signer) external {
        Node storage node = _registered(msg.sender);
        _checkRecord(endpoint, region, keysHash);
        address oldSigner = node.signer;
        if (signer != oldSigner) {
            _claimSigner(signer, msg.sender);
            delete _operatorOf[oldSigner];
            node.signer = signer;
        }
        node.region = region;
        node.keysHash = keysHash;
        node.endpoint = endpoint;
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
        if (remaining != 0 && remaining < minStake) revert StakeBelowMinimum(remaining, minStake);
        uint256 unbonding = node.unbonding + amount;
        uint48 releaseAt = uint48(block.timestamp) + unbondingDelay;
        node.stake = uint128(remaining);
        node.unbonding = uint128(unbonding);
        node.unbondingReleaseAt = releaseAt;
        emit Unbonded(msg.sender, amount, remaining, unbonding, releaseAt);
    }

    /// @notice Pays out the caller's unbonded stake once its delay has passed.
    function withdraw() external {
        Node storage node = _nodes[msg.sender];
        uint256 amount = node.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < node.unbondingReleaseAt) revert StillUnbonding(node.unbondingReleaseAt, block.timestamp);
        node.unbonding = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- governance

    /// @notice Takes `amount` from an operator's stake, then from its unbonding balance, and sends
    /// it to `slashRecipient`. Governance only.
    /// @param operator The operator to slash.
    /// @param amount Tokens to take.
    /// @param reason Short reason or hash of the proposal that decided it.
    function slash(address operator, uint256 amount, bytes32 reason) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Node storage node = _registered(operator);
        if (amount == 0) revert ZeroAmount();
        uint256 stake = node.stake;
        uint256 unbonding = node.unbonding;
        if (amount > stake + unbonding) revert SlashExceedsStake(amount, stake + unbonding);
        uint256 fromStake = amount < stake ? amount : stake;
        uint256 fromUnbonding = amount - fromStake;
        node.stake = uint128(stake - fromStake);
        node.unbonding = uint128(unbonding - fromUnbonding);
        emit Slashed(operator, fromStake, fromUnbonding, reason);
        token.safeTransfer(slashRecipient, amount);
    }

    /// @notice Sets the stake a node needs to be active. Nodes below a raised minimum go inactive
    /// until they add stake. Governance only.
    /// @param minStake_ New minimum, in wei (non-zero).
    function setMinStake(uint256 minStake_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMinStake(minStake_);
    }

    /// @notice Sets the unbonding delay for future `unbond` calls. Governance only.
    /// @param delay Seconds, at most MAX_UNBONDING_DELAY.
    function setUnbondingDelay(uint48 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setUnbondingDelay(delay);
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

    /// @inheritdoc IRelayerRegistry
    function isActive(address operator) public view returns (bool) {
        Node storage node = _nodes[operator];
        return node.signer != address(0) && node.stake >= minStake;
    }

    /// @inheritdoc IRelayerRegistry
    function signerOf(address operator) external view returns (address signer, bool active) {
        Node storage node = _nodes[operator];
        return (node.signer, node.signer != address(0) && node.stake >= minStake);
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
        uint256 amount
    ) private {
        Node storage node = _nodes[msg.sender];
        if (node.signer != address(0)) revert AlreadyRegistered(msg.sender);
        _checkRecord(endpoint, region, keysHash);
        _claimSigner(signer, msg.sender);
        uint256 received = _pull(amount);
        if (received < minStake) revert StakeBelowMinimum(received, minStake);
        node.signer = signer;
        node.region = region;
        node.keysHash = keysHash;
        node.stake = uint128(received);
        node.endpoint = endpoint;
        _operators.push(msg.sender);
        emit NodeRegistered(msg.sender, signer, region, keysHash, endpoint, received);
    }

    function _registered(address operator) private view returns (Node storage node) {
        node = _nodes[operator];
        if (node.signer == address(0)) revert NotRegistered(operator);
    }

    function _checkRecord(string calldata endpoint, bytes2 region, bytes32 keysHash) private pure {
        uint256 length = bytes(endpoint).length;
        if (length == 0 || length > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint(length, MAX_ENDPOINT_LENGTH);
        if (!_isUpper(region[0]) || !_isUpper(region[1])) revert InvalidRegion(region);
        if (keysHash == bytes32(0)) revert ZeroKeysHash();
    }

    function _isUpper(bytes1 c) private pure returns (bool) {
        return c >= 0x41 && c <= 0x5A;
    }

    function _claimSigner(address signer, address operator) private {
        if (signer == address(0)) revert ZeroAddress();
        address holder = _operatorOf[signer];
        if (holder != address(0)) revert SignerInUse(signer, holder);
        _operatorOf[signer] = operator;
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
        emit MinStakeChanged(minStake, minStake_);
        minStake = minStake_;
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
