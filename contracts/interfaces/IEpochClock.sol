// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title The epoch schedule that locks, receipts and client-key caps are measured against.
interface IEpochClock {
    /// @notice Index of the epoch that contains the current block.
    function currentEpoch() external view returns (uint64);

    /// @notice Whether receipts of `epoch` can no longer be submitted, and from when (a timestamp:
    /// the epoch's end plus its submission window, in epochs of its own length). Fixed once the
    /// epoch has begun: later changes of the window or the epoch length never move it.
    function receiptsClosed(uint64 epoch) external view returns (bool closed, uint64 closesAt);
}
