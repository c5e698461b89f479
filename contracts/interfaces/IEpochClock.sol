// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title The epoch schedule that receipts and client-key revocations are measured against.
interface IEpochClock {
    /// @notice Index of the epoch that contains the current block.
    function currentEpoch() external view returns (uint64);
}
