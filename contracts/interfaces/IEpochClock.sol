// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title The epoch schedule that locks, receipts and client-key caps are measured against.
interface IEpochClock {
    /// @notice Index of the epoch that contains the current block.
    function currentEpoch() external view returns (uint64);

    /// @notice Last epoch during which receipts of `epoch` are accepted (`epoch` plus the
    /// submission window that was fixed for it when it started).
    function receiptDeadline(uint64 epoch) external view returns (uint64);
}
