// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IPersonhoodSource} from "./IPersonhoodSource.sol";

/// @title VoterRegistry
/// @notice The addresses whose votes count in quadratic governance, one per person. Quadratic voting
/// without identity is broken by splitting tokens across fresh addresses; here an address that is not
/// registered has no weight at all, on-chain and on Snapshot (`snapshotVotes`).
///
/// Registration is permissionless and checked on-chain: anyone registers *themselves* with a proof
/// from a trusted personhood source (an EAS attestation made out to them, docs/governance.md). One
/// identity key (an attestation uid) registers one address at a time. Anyone can prune a voter whose
/// proof no longer holds (revoked, expired, or its source disabled). Nobody can register someone
/// else or remove a voter whose proof holds: there is no registrar.
/// @dev Registration is checkpointed on X0T's timestamp clock, so a proposal counts exactly the
/// addresses registered at its snapshot.
///
/// Roles: DEFAULT_ADMIN_ROLE (the governance timelock, after deployment) enables or disables
/// personhood sources and excludes protocol addresses for good. Excluded addresses (the treasury
/// Safe, the timelock, the governor, the protocol contracts) can never be voters.
contract VoterRegistry is AccessControl {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice How a voter was registered.
    struct Voter {
        IPersonhoodSource source;
        bytes32 identity;
    }

    /// @notice The token whose votes `snapshotVotes` reports.
    IVotes public immutable token;
    /// @notice Number of currently registered voters.
    uint256 public voterCount;
    /// @notice Sources whose proofs register voters.
    mapping(IPersonhoodSource source => bool) public isSource;
    /// @notice Addresses that can never be voters.
    mapping(address account => bool) public isExcluded;
    /// @notice The proof each registered voter registered with (zero when not registered).
    mapping(address voter => Voter) public voterOf;
    /// @notice The voter that holds an identity key (keccak256(source, identity)), or zero.
    mapping(bytes32 key => address voter) public holderOf;
    mapping(address voter => Checkpoints.Trace208) private _registered;

    /// @notice `voter` registered with `identity` proved by `source`.
    event VoterRegistered(address indexed voter, IPersonhoodSource indexed source, bytes32 identity);
    /// @notice `voter` was removed by `by` (itself when it left; anyone when its proof lapsed).
    event VoterRemoved(address indexed voter, address indexed by, bytes32 identity);
    /// @notice A personhood source was enabled or disabled.
    event SourceSet(IPersonhoodSource indexed source, bool enabled);
    /// @notice `account` can never be a voter from now on.
    event AccountExcluded(address indexed account);

    /// @notice The caller is already a voter, or the identity already registered `identityHolder`
    /// (zero if only the former).
    error AlreadyRegistered(address voter, address identityHolder);
    /// @notice The address is not registered.
    error NotRegistered(address voter);
    /// @notice The source is not enabled.
    error UnknownSource(IPersonhoodSource source);
    /// @notice The address can never be a voter.
    error ExcludedAccount(address account);
    /// @notice The voter's proof still holds: it cannot be pruned.
    error StillValid(address voter, IPersonhoodSource source, bytes32 identity);
    /// @notice A zero address was given.
    error ZeroAddress();
    /// @notice `timepoint` is not in the past.
    error FutureLookup(uint256 timepoint, uint48 now_);

    /// @param admin Holder of DEFAULT_ADMIN_ROLE (the deployer while wiring, then the timelock).
    /// @param token_ X0T (ERC-5805 votes), read by `snapshotVotes`.
    constructor(address admin, IVotes token_) {
        if (admin == address(0) || address(token_) == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Registers the caller as a voter with a proof from an enabled source. Permissionless.
    /// @param source The personhood source that checks `proof`.
    /// @param proof Source-specific proof (for EAS: the 32-byte uid of an attestation to the caller).
    function register(IPersonhoodSource source, bytes calldata proof) external {
        if (isExcluded[msg.sender]) revert ExcludedAccount(msg.sender);
        if (!isSource[source]) revert UnknownSource(source);
        bytes32 identity = source.verify(msg.sender, proof);
        bytes32 key = _key(source, identity);
        address holder = holderOf[key];
        // One check for both ways of registering twice; an EAS uid names its recipient, so with EAS
        // `holder` is only ever the caller itself.
        if (holder != address(0) || isRegistered(msg.sender)) revert AlreadyRegistered(msg.sender, holder);

        holderOf[key] = msg.sender;
        voterOf[msg.sender] = Voter(source, identity);
        _registered[msg.sender].push(_now(), 1);
        ++voterCount;
        emit VoterRegistered(msg.sender, source, identity);
    }

    /// @notice Removes `voter` whose proof no longer holds (revoked or expired attestation, or a
    /// source the DAO disabled). Anyone may call it; it reverts while the proof holds.
    /// @param voter The registered voter.
    function prune(address voter) external {
        Voter memory v = voterOf[voter];
        if (address(v.source) == address(0)) revert NotRegistered(voter);
        if (isSource[v.source] && v.source.isValid(voter, v.identity)) revert StillValid(voter, v.source, v.identity);
        _remove(voter, v);
    }

    /// @notice The caller stops being a voter (for example before registering a new address with a
    /// new proof). Its identity key becomes free again.
    function leave() external {
        Voter memory v = voterOf[msg.sender];
        if (address(v.source) == address(0)) revert NotRegistered(msg.sender);
        _remove(msg.sender, v);
    }

    /// @notice Enables or disables a personhood source. DEFAULT_ADMIN_ROLE (the timelock) only.
    /// Voters of a disabled source can be pruned by anyone.
    /// @param source The source contract.
    /// @param enabled True to accept its proofs.
    function setSource(IPersonhoodSource source, bool enabled) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(source) == address(0)) revert ZeroAddress();
        isSource[source] = enabled;
        emit SourceSet(source, enabled);
    }

    /// @notice Excludes `account` from ever being a voter (treasury, timelock, governor, protocol
    /// contracts), removing it if it is registered. DEFAULT_ADMIN_ROLE only; cannot be undone.
    /// @param account The address to exclude.
    function exclude(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (account == address(0)) revert ZeroAddress();
        isExcluded[account] = true;
        emit AccountExcluded(account);
        Voter memory v = voterOf[account];
        if (address(v.source) != address(0)) _remove(account, v);
    }

    /// @notice Whether `voter` is registered now.
    /// @param voter The address.
    /// @return True if registered.
    function isRegistered(address voter) public view returns (bool) {
        return _registered[voter].latest() == 1;
    }

    /// @notice Whether `voter` was registered at `timepoint` (a past timestamp).
    /// @param voter The address.
    /// @param timepoint A timestamp before the current block's.
    /// @return True if registered then.
    function wasRegistered(address voter, uint256 timepoint) external view returns (bool) {
        uint48 now_ = _now();
        if (timepoint >= now_) revert FutureLookup(timepoint, now_);
        return _registered[voter].upperLookupRecent(SafeCast.toUint48(timepoint)) == 1;
    }

    /// @notice X0T votes of `account` if it is a registered voter, else 0: what Snapshot's
    /// `contract-call` strategy reads at the proposal's block (then `math` takes the square root).
    /// @param account The address.
    /// @return votes Delegated X0T votes (wei) of a registered voter; 0 for anyone else.
    function snapshotVotes(address account) external view returns (uint256 votes) {
        return isRegistered(account) ? token.getVotes(account) : 0;
    }

    function _remove(address voter, Voter memory v) private {
        delete holderOf[_key(v.source, v.identity)];
        delete voterOf[voter];
        _registered[voter].push(_now(), 0);
        --voterCount;
        emit VoterRemoved(voter, msg.sender, v.identity);
    }

    function _key(IPersonhoodSource source, bytes32 identity) private pure returns (bytes32) {
        return keccak256(abi.encode(source, identity));
    }

    function _now() private view returns (uint48) {
        return SafeCast.toUint48(block.timestamp);
    }
}
