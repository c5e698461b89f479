// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev The few cheatcodes these tests use, at the address every Foundry-compatible runner
/// (Hardhat 3's EDR included) serves them. forge-std is not on npm, so this is declared here.
interface Vm {
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external pure returns (address);
    function assume(bool condition) external pure;
    function expectRevert(bytes calldata revertData) external;
}

Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
