// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title What other protocol contracts read from the relayer registry.
interface IRelayerRegistry {
    /// @notice True if `operator` has a node record and at least the minimum stake.
    function isActive(address operator) external view returns (bool);

    /// @notice True if `operator` had registered by `timestamp` and its stake (bonded plus
    /// unbonding, both slashable) reaches the minimum stake that was in force at `timestamp`.
    /// A later change of the minimum never changes the answer for a past time.
    function isActiveAt(address operator, uint256 timestamp) external view returns (bool);

    /// @notice When `operator` first registered (zero if never).
    function registeredAt(address operator) external view returns (uint256);

    /// @notice The signing address of `operator`'s node and whether the node is active.
    function signerOf(address operator) external view returns (address signer, bool active);

    /// @notice The operator whose node signs with `signer` (zero if none).
    function operatorOf(address signer) external view returns (address);

    /// @notice Freezes `operator`'s withdrawals until `until` because proposal `proposalId` would
    /// slash it. Only the registry's slash governor.
    function freezeForSlash(address operator, uint256 proposalId, uint48 until) external;
}
