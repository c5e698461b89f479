// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev The two Safe administration calls the treasury needs at creation.
interface ISafeAdmin {
    function enableModule(address module) external;
    function setGuard(address guard) external;
}

/// @title TreasurySetup
/// @notice Delegate-called once by a new treasury Safe from `Safe.setup` (its `to`/`data` hook):
/// enables the TreasuryExecutor (the DAO's way in, called only by the timelock) as a module and
/// installs the CouncilGuard, in the same
/// transaction that creates the Safe, so there is no moment when the council alone administers it.
/// @dev Runs in the Safe's context: `address(this)` is the Safe, and the Safe's `authorized`
/// functions accept calls from itself. Holds no state and is never called directly.
contract TreasurySetup {
    /// @notice Called directly instead of by delegatecall.
    error OnlyDelegateCall();

    address private immutable _self = address(this);

    /// @notice Enables `module` (the TreasuryExecutor) and sets `guard` on the calling Safe.
    function setUp(address module, address guard) external {
        if (address(this) == _self) revert OnlyDelegateCall();
        ISafeAdmin(address(this)).enableModule(module);
        ISafeAdmin(address(this)).setGuard(guard);
    }
}
