// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {RewardMath} from "../../contracts/libraries/RewardMath.sol";

contract RewardMathTest {
    function _bound(uint256 x, uint256 max) private pure returns (uint256) {
        return x % (max + 1);
    }

    /// @notice A receipt's reward, with or without the bonus, never exceeds the value released for it.
    function testFuzz_ReceiptRewardIsCappedByValue(
        uint64 cells,
        uint96 rewardPerCell,
        uint16 bonusBps,
        uint128 value
    ) public pure {
        uint256 bonus = _bound(bonusBps, 5_000);
        (uint256 base, uint256 boosted) = RewardMath.receiptReward(cells, rewardPerCell, bonus, value);
        require(base <= value && boosted <= value, "above value");
        require(base <= boosted, "bonus lowered the reward");
        uint256 raw = uint256(cells) * rewardPerCell;
        require(base == (raw < value ? raw : value), "base is not min(raw, value)");
        uint256 withBonus = (raw * (10_000 + bonus)) / 10_000;
        if (withBonus <= value) require(boosted == withBonus, "bonus withheld under the cap");
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
        (uint256 base, uint256 boosted) = RewardMath.receiptReward(1_000_000, 1e14, 1_000, value);
        require(base == value && boosted == value, "cap must bind at the default numbers");
    }
}
