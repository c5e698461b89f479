// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title SqrtWeight
/// @notice Quadratic voting weight: a voter with `votes` (X0T wei) has `sqrt(votes)` weight.
/// @dev 1 X0T = 1e18 wei has weight 1e9; 1,000,000 X0T has weight 1e12. Rounded down
/// (OpenZeppelin `Math.sqrt`), so splitting a balance never rounds in the splitter's favour by more
/// than one unit per address.
library SqrtWeight {
    /// @notice The weight of `votes`: floor(sqrt(votes)).
    function weight(uint256 votes) internal pure returns (uint256) {
        return Math.sqrt(votes);
    }
}
