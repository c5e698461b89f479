// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {RewardMath} from "../../contracts/libraries/RewardMath.sol";

contract RewardMathTest {
    function _bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        return min + (x % (max - min + 1));
    }

    /// @notice With relayShare * (1 + bonus) + treasury <= 100% (what EpochRewards enforces), a
    /// receipt's reward plus the treasury's part never exceeds the value the payer released, and
    /// the reward is below the value: paying oneself always loses.
    function testFuzz_RewardPlusTreasuryWithinValue(
        uint64 cells,
        uint80 rewardPerCell,
        uint16 shareBps,
        uint16 bonusBps,
        uint128 value
    ) public pure {
        uint256 bonus = _bound(bonusBps, 0, 5_000);
        uint256 share = _bound(shareBps, 1, (10_000 * 10_000) / (10_000 + bonus));
        uint256 treasuryBps = 10_000 - (share * (10_000 + bonus) + 9_999) / 10_000;
        (uint256 base, uint256 boosted) = RewardMath.receiptReward(cells, rewardPerCell, share, bonus, value);
        require(base <= boosted, "bonus lowered the reward");
        require(boosted + (value * treasuryBps) / 10_000 <= value, "reward + treasury above value");
        uint256 raw = uint256(cells) * rewardPerCell;
        uint256 cap = (value * share) / 10_000;
        require(base == (raw < cap ? raw : cap), "base is not min(raw, value * share)");
    }

    /// @notice Pro-rata shares never exceed the claim and together never exceed the pool.
    function testFuzz_PoolSharesStayWithinPool(uint128 a, uint128 b, uint128 c, uint96 pool) public pure {
        uint256 total = uint256(a) + b + c;
        uint256 sa = RewardMath.poolShare(a, total, pool);
        uint256 sb = RewardMath.poolShare(b, total, pool);
        uint256 sc = RewardMath.poolShare(c, total, pool);
        require(sa <= a && sb <= b && sc <= c, "share above claim");
        if (total > pool) require(sa + sb + sc <= pool, "shares above pool");
        else require(sa == a && sb == b && sc == c, "scaled an undersubscribed pool");
    }

    function test_WorkedExample() public pure {
        // docs/economics.md: 1 GB through 3 hops, 1,000-byte cells, 1 X0T/GB, 0.0001 X0T/cell.
        uint256 value = (1e18 * (1e9 / uint256(3))) / 1e9; // one hop's third of 1 X0T
        (uint256 base, uint256 boosted) = RewardMath.receiptReward(1_000_000, 1e14, 9_000, 1_000, value);
        require(base == (value * 9_000) / 10_000, "90% of the hop's value without the bonus");
        require(boosted == (value * 9_900) / 10_000, "99% with it");
    }
}
