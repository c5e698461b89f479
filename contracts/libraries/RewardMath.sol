// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title RewardMath: the reward rules of x0tta6bl4, as pure functions
/// @notice The economic invariant lives here: a receipt never earns more than `relayShareBps` of the
/// X0T its payer released for it (times 1 + bonus with attested uptime), and pro-rata scaling only
/// ever lowers rewards. With relayShare * (1 + bonus) + treasuryShare <= 100% (EpochRewards checks
/// it), what is minted never exceeds what is burned, and a relayer paying itself always loses.
library RewardMath {
    uint256 internal constant BPS = 10_000;

    /// @notice Reward a receipt earns without and with the uptime bonus.
    /// @param cells Cells newly paid by the receipt.
    /// @param rewardPerCell X0T wei per cell.
    /// @param relayShareBps Most a receipt earns of its payer's X0T, without the bonus.
    /// @param uptimeBonusBps Bonus for attested uptime, in basis points, on both terms.
    /// @param value X0T the payer released for the receipt.
    /// @return base min(cells * rewardPerCell, value * share).
    /// @return boosted min(cells * rewardPerCell * (1 + bonus), value * share * (1 + bonus)).
    function receiptReward(
        uint256 cells,
        uint256 rewardPerCell,
        uint256 relayShareBps,
        uint256 uptimeBonusBps,
        uint256 value
    ) internal pure returns (uint256 base, uint256 boosted) {
        uint256 raw = cells * rewardPerCell;
        base = Math.min(raw, (value * relayShareBps) / BPS);
        boosted = Math.min(
            (raw * (BPS + uptimeBonusBps)) / BPS,
            (value * relayShareBps * (BPS + uptimeBonusBps)) / (BPS * BPS)
        );
    }

    /// @notice A relayer's share of an epoch's pool.
    /// @param claimable What the relayer earned in the epoch (base, or boosted with the bonus).
    /// @param totalClaimable What all relayers earned in the epoch.
    /// @param pool Most that may be minted for the epoch.
    /// @return reward `claimable`, scaled down pro rata when the total exceeds the pool.
    function poolShare(uint256 claimable, uint256 totalClaimable, uint256 pool) internal pure returns (uint256 reward) {
        if (totalClaimable <= pool) return claimable;
        return Math.mulDiv(claimable, pool, totalClaimable);
    }
}
