// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Enum} from "@safe-global/safe-smart-account/contracts/libraries/Enum.sol";

/// @dev The module entry point of a Safe.
interface ISafeModuleCall {
    function execTransactionFromModuleReturnData(
        address to,
        uint256 value,
        bytes memory data,
        Enum.Operation operation
    ) external returns (bool success, bytes memory returnData);
}

/// @title TreasuryExecutor
/// @notice The DAO's only way into the treasury Safe: a Safe module that the timelock calls to make
/// the Safe call something (a payout, or the Safe's own administration), and that reverts when the
/// Safe's call fails. A bare `execTransactionFromModule` returns false on failure and the timelock
/// would mark the proposal Executed although nothing moved; through this executor the timelock
/// operation reverts instead and stays ready to be executed again.
/// @dev Only CALL, never DELEGATECALL. Holds no state; `timelock` is immutable.
contract TreasuryExecutor {
    /// @notice The governance timelock, the only caller.
    address public immutable timelock;

    /// @notice The Safe made the call.
    event SafeCallExecuted(address indexed safe, address indexed to, uint256 value, bytes4 selector);

    /// @notice Only the timelock may use the executor.
    error Unauthorized(address caller);
    /// @notice The Safe's call reverted (or the Safe refused the module): nothing happened.
    error SafeCallFailed(address safe, address to, uint256 value, bytes returnData);
    /// @notice A zero timelock was given.
    error ZeroAddress();

    /// @param timelock_ The governance timelock.
    constructor(address timelock_) {
        if (timelock_ == address(0)) revert ZeroAddress();
        timelock = timelock_;
    }

    /// @notice Makes `safe` call `to` with `value` and `data`; reverts if that call fails. Timelock only.
    /// @param safe The treasury Safe (this contract must be one of its modules).
    /// @param to Target of the Safe's call.
    /// @param value ETH sent by the Safe.
    /// @param data Calldata of the Safe's call.
    /// @return returnData What the call returned.
    function exec(
        ISafeModuleCall safe,
        address to,
        uint256 value,
        bytes calldata data
    ) external returns (bytes memory returnData) {
        if (msg.sender != timelock) revert Unauthorized(msg.sender);
        bool success;
        (success, returnData) = safe.execTransactionFromModuleReturnData(to, value, data, Enum.Operation.Call);
        if (!success) revert SafeCallFailed(address(safe), to, value, returnData);
        emit SafeCallExecuted(address(safe), to, value, data.length >= 4 ? bytes4(data) : bytes4(0));
    }
}
