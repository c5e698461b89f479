// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {SqrtWeight} from "./SqrtWeight.sol";
import {IRelayerRegistry} from "../interfaces/IRelayerRegistry.sol";
import {VoterRegistry} from "./VoterRegistry.sol";

/// @title QuadraticGovernor
/// @notice On-chain governance of x0tta6bl4: a voter's weight is sqrt(X0T votes at the proposal's
/// snapshot), counted only for addresses registered in the VoterRegistry at that snapshot (the
/// Sybil defence; docs/governance.md). Passed proposals are queued and executed by the
/// TimelockController, which holds every admin role of the protocol and is a module of the
/// treasury Safe.
///
/// A guardian (a separate Safe, not the council) may veto: cancel a proposal that is pending, active,
/// succeeded or queued, until its sunset. It cannot propose, vote or execute; the DAO replaces it or
/// extends its sunset by proposal, by at most MAX_GUARDIAN_TERM at a time.
/// @dev Built from OpenZeppelin's Governor parts; only the weight hook `_getVotes`, the quorum and
/// the guardian are ours. Everything is in sqrt units: 1 X0T of votes is 1e9 units, the proposal threshold and
/// the quorum included. Voting delay, voting period, threshold and quorum change only by proposal.
contract QuadraticGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorTimelockControl
{
    /// @notice Whose registration makes an address's votes count.
    VoterRegistry public immutable voters;
    /// @notice The relayer registry whose operators a proposal may slash; proposing a slash freezes
    /// the operator's withdrawals there in the same transaction.
    IRelayerRegistry public immutable slashRegistry;
    /// @notice How long a freeze outlasts the proposal's vote and timelock delay: a week for anyone to execute it.
    uint256 public constant SLASH_FREEZE_MARGIN = 7 days;
    bytes4 private constant SLASH_SELECTOR = bytes4(keccak256("slash(address,uint256,bytes32)"));
    /// @notice Longest a guardian's mandate may run from the moment it is set: one year.
    uint256 public constant MAX_GUARDIAN_TERM = 365 days;
    uint256 private _quorum;
    /// @notice Who may veto proposals until `guardianSunset`.
    address public guardian;
    /// @notice Timestamp from which the guardian can no longer veto.
    uint48 public guardianSunset;

    /// @notice The quorum (for + abstain weight, in sqrt units) changed.
    event QuorumSet(uint256 oldQuorum, uint256 newQuorum);
    /// @notice The guardian or its sunset changed.
    event GuardianSet(address indexed guardian, uint48 sunset);
    /// @notice The guardian vetoed (cancelled) a proposal.
    event ProposalVetoed(uint256 indexed proposalId, address indexed guardian);

    /// @notice A zero address was given for the token, timelock or registry.
    error ZeroAddress();
    /// @notice The caller is not the guardian, or its sunset has passed.
    error NotGuardian(address caller, uint48 sunset);
    /// @notice The sunset is further away than MAX_GUARDIAN_TERM.
    error GuardianTermTooLong(uint48 sunset, uint256 latest);

    /// @param token X0T (ERC-5805 votes, timestamp clock).
    /// @param timelock The TimelockController that executes proposals.
    /// @param registry The VoterRegistry.
    /// @param votingDelay_ Seconds between proposing and the snapshot / start of voting.
    /// @param votingPeriod_ Seconds of voting.
    /// @param proposalThreshold_ Weight (sqrt units) a proposer needs.
    /// @param quorum_ Weight (sqrt units) of for + abstain votes a proposal needs.
    /// @param guardian_ The guardian (a separate Safe), or zero for none.
    /// @param guardianTerm_ Seconds from deployment until the guardian's veto ends (at most MAX_GUARDIAN_TERM).
    /// @param slashRegistry_ The relayer registry (this governor must be its slash governor).
    constructor(
        IVotes token,
        TimelockController timelock,
        VoterRegistry registry,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorum_,
        address guardian_,
        uint32 guardianTerm_,
        IRelayerRegistry slashRegistry_
    )
        Governor("x0tta6bl4 QuadraticGovernor")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token)
        GovernorTimelockControl(timelock)
    {
        if (address(registry) == address(0) || address(slashRegistry_) == address(0)) revert ZeroAddress();
        voters = registry;
        slashRegistry = slashRegistry_;
        _setQuorum(quorum_);
        _setGuardian(guardian_, SafeCast.toUint48(block.timestamp + guardianTerm_));
    }

    /// @notice The quorum in sqrt units (the same at every timepoint; changes apply to proposals
    /// whose votes are counted afterwards).
    function quorum(uint256) public view override returns (uint256) {
        return _quorum;
    }

    /// @notice Sets the quorum (sqrt units). Only by proposal, through the timelock.
    function setQuorum(uint256 newQuorum) external onlyGovernance {
        _setQuorum(newQuorum);
    }

    /// @notice Replaces the guardian or moves its sunset. Only by proposal, through the timelock.
    /// @param newGuardian The new guardian (zero: none).
    /// @param sunset When its veto ends, at most MAX_GUARDIAN_TERM from now.
    function setGuardian(address newGuardian, uint48 sunset) external onlyGovernance {
        _setGuardian(newGuardian, sunset);
    }

    /// @notice The guardian cancels a proposal that is pending, active, succeeded or queued (also
    /// its timelock operation). Only the guardian, only before its sunset.
    /// @param targets The proposal's targets.
    /// @param values The proposal's values.
    /// @param calldatas The proposal's calldatas.
    /// @param descriptionHash keccak256 of the proposal's description.
    /// @return proposalId The vetoed proposal.
    function veto(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata calldatas,
        bytes32 descriptionHash
    ) external returns (uint256 proposalId) {
        if (msg.sender != guardian || block.timestamp >= guardianSunset) revert NotGuardian(msg.sender, guardianSunset);
        proposalId = _cancel(targets, values, calldatas, descriptionHash);
        emit ProposalVetoed(proposalId, msg.sender);
    }

    function _setGuardian(address newGuardian, uint48 sunset) private {
        uint256 latest = block.timestamp + MAX_GUARDIAN_TERM;
        if (sunset > latest) revert GuardianTermTooLong(sunset, latest);
        guardian = newGuardian;
        guardianSunset = sunset;
        emit GuardianSet(newGuardian, sunset);
    }

    function _setQuorum(uint256 newQuorum) private {
        emit QuorumSet(_quorum, newQuorum);
        _quorum = newQuorum;
    }

    /// @dev The weight hook: sqrt of the account's delegated X0T votes at `timepoint`, or zero if
    /// the account was not a registered voter then.
    function _getVotes(
        address account,
        uint256 timepoint,
        bytes memory params
    ) internal view override(Governor, GovernorVotes) returns (uint256) {
        if (!voters.wasRegistered(account, timepoint)) return 0;
        return SqrtWeight.weight(super._getVotes(account, timepoint, params));
    }

    // The overrides below only resolve OpenZeppelin's multiple inheritance.

    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    /// @dev Proposing `slash(operator, …)` on the relayer registry freezes the operator's withdrawals
    /// until the proposal's vote and timelock delay are over (plus a margin), in the same
    /// transaction: an operator cannot unbond and withdraw between a slash proposal and its freeze.
    function _propose(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description,
        address proposer
    ) internal override returns (uint256 proposalId) {
        proposalId = super._propose(targets, values, calldatas, description, proposer);
        IRelayerRegistry registry = slashRegistry;
        uint256 delay = TimelockController(payable(timelock())).getMinDelay();
        uint48 until = SafeCast.toUint48(proposalDeadline(proposalId) + delay + SLASH_FREEZE_MARGIN);
        for (uint256 i; i < targets.length; ++i) {
            bytes memory data = calldatas[i];
            if (targets[i] != address(registry) || data.length < 36 || bytes4(data) != SLASH_SELECTOR) continue;
            registry.freezeForSlash(_firstArgument(data), proposalId, until);
        }
    }

    /// @dev The first 32-byte argument of a call (after its selector), as an address.
    function _firstArgument(bytes memory data) private pure returns (address) {
        uint256 word;
        for (uint256 i = 4; i < 36; ++i) word = (word << 8) | uint8(data[i]);
        return address(uint160(word));
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function state(uint256 proposalId) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (bool) {
        return super.proposalNeedsQueuing(proposalId);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
