// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BaseTransactionGuard} from "@safe-global/safe-smart-account/contracts/base/GuardManager.sol";
import {Enum} from "@safe-global/safe-smart-account/contracts/libraries/Enum.sol";

/// @title CouncilGuard
/// @notice Transaction guard of the treasury Safe: the council's signatures can move funds, but
/// cannot administer the Safe. A council-signed transaction that calls the Safe itself (add or
/// remove an owner, change the threshold, enable or disable a module, change the guard or the
/// fallback handler) or that uses DELEGATECALL (which could rewrite the Safe's storage) is
/// refused. The Safe's administration goes through the governance timelock, an enabled module:
/// module transactions do not pass through this guard (docs/governance.md).
/// @dev Stateless; one deployment can guard any number of Safes. If the guard ever had to go, the
/// timelock removes it by a module transaction calling `setGuard(address(0))`.
contract CouncilGuard is BaseTransactionGuard {
    /// @notice The council tried to call the Safe itself; only the timelock may.
    error SelfAdministrationRefused(address safe, bytes4 selector);
    /// @notice The council tried a DELEGATECALL.
    error DelegateCallRefused(address safe, address to);

    /// @notice Called by the Safe before a signed transaction; reverts to refuse it.
    /// @dev `memory` as in Safe's interface: with eleven parameters, `calldata` runs out of stack.
    // solhint-disable-next-line gas-calldata-parameters
    function checkTransaction(
        address to,
        uint256,
        bytes memory data,
        Enum.Operation operation,
        uint256,
        uint256,
        uint256,
        address,
        address payable,
        bytes memory,
        address
    ) external view override {
        if (operation == Enum.Operation.DelegateCall) revert DelegateCallRefused(msg.sender, to);
        if (to == msg.sender) revert SelfAdministrationRefused(msg.sender, data.length >= 4 ? bytes4(data) : bytes4(0));
    }

    /// @notice Called by the Safe after a signed transaction; nothing to check.
    function checkAfterExecution(bytes32, bool) external pure override {}
}
