// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title VoterRegistry
/// @notice The identities whose votes count in quadratic governance: one address per person or
/// organisation. Quadratic voting without identity is broken by splitting tokens across fresh
/// addresses; here an address that is not registered has no weight at all (docs/governance.md).
/// @dev Registration is checkpointed on the same timestamp clock as X0T's votes, so a proposal
/// counts only addresses that were registered at its snapshot: registering after a proposal was
/// made does not help on that proposal.
///
/// Roles:
/// - DEFAULT_ADMIN_ROLE (the governance timelock): grants and revokes REGISTRAR_ROLE.
/// - REGISTRAR_ROLE (the council Safe, and the timelock): registers and removes voters after
///   checking an identity attestation off-chain (the attestation's hash is stored in the event).
contract VoterRegistry is AccessControl {
    using Checkpoints for Checkpoints.Trace208;

    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    mapping(address voter => Checkpoints.Trace208) private _registered;
    /// @notice Number of currently registered voters.
    uint256 public voterCount;

    /// @notice `voter` was registered by `registrar`; `attestation` is the hash of the identity proof checked.
    event VoterRegistered(address indexed voter, address indexed registrar, bytes32 attestation);
    /// @notice `voter` was removed by `registrar` for `reason`.
    event VoterRemoved(address indexed voter, address indexed registrar, bytes32 reason);

    /// @notice The address is already registered.
    error AlreadyRegistered(address voter);
    /// @notice The address is not registered.
    error NotRegistered(address voter);
    /// @notice The zero address cannot be a voter or the admin.
    error ZeroAddress();
    /// @notice `timepoint` is not in the past.
    error FutureLookup(uint256 timepoint, uint48 now_);

    /// @param admin Holder of DEFAULT_ADMIN_ROLE and REGISTRAR_ROLE (the governance timelock).
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    /// @notice Registers `voter` as one identity. Only REGISTRAR_ROLE.
    /// @param attestation Hash of the identity attestation that was checked (audit trail).
    function register(address voter, bytes32 attestation) external onlyRole(REGISTRAR_ROLE) {
        if (voter == address(0)) revert ZeroAddress();
        if (isRegistered(voter)) revert AlreadyRegistered(voter);
        _registered[voter].push(_now(), 1);
        ++voterCount;
        emit VoterRegistered(voter, msg.sender, attestation);
    }

    /// @notice Removes `voter` (lost key, duplicate identity, …). Only REGISTRAR_ROLE.
    function remove(address voter, bytes32 reason) external onlyRole(REGISTRAR_ROLE) {
        if (!isRegistered(voter)) revert NotRegistered(voter);
        _registered[voter].push(_now(), 0);
        --voterCount;
        emit VoterRemoved(voter, msg.sender, reason);
    }

    /// @notice Whether `voter` is registered now.
    function isRegistered(address voter) public view returns (bool) {
        return _registered[voter].latest() == 1;
    }

    /// @notice Whether `voter` was registered at `timepoint` (a past timestamp).
    function wasRegistered(address voter, uint256 timepoint) external view returns (bool) {
        uint48 now_ = _now();
        if (timepoint >= now_) revert FutureLookup(timepoint, now_);
        return _registered[voter].upperLookupRecent(SafeCast.toUint48(timepoint)) == 1;
    }

    function _now() private view returns (uint48) {
        return SafeCast.toUint48(block.timestamp);
    }
}
