// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VestingWallet} from "@openzeppelin/contracts/finance/VestingWallet.sol";

/// @title GenesisVesting
/// @notice Holds a genesis allocation (the distributor's 100,000,000 X0T on Base Sepolia) and
/// releases it linearly to its beneficiary from `start` over `duration`. It has no way to delegate,
/// so the X0T it holds carry no votes: a genesis allocation cannot meet the quorum while it vests,
/// and afterwards it is one holder's balance, below the quorum by the deploy-time rule
/// (docs/governance.md). Anyone may call `release(token)`; the beneficiary receives.
/// @dev OpenZeppelin's VestingWallet unchanged; this contract only gives it a name in the build.
contract GenesisVesting is VestingWallet {
    /// @param beneficiary Receiver of the released tokens (the owner of the wallet).
    /// @param startTimestamp When vesting starts.
    /// @param durationSeconds How long until everything is released.
    constructor(
        address beneficiary,
        uint64 startTimestamp,
        uint64 durationSeconds
    ) VestingWallet(beneficiary, startTimestamp, durationSeconds) {}
}
