// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {BandwidthCredit} from "../../../contracts/BandwidthCredit.sol";
import {EpochRewards} from "../../../contracts/EpochRewards.sol";
import {RelayerRegistry} from "../../../contracts/RelayerRegistry.sol";
import {X0T} from "../../../contracts/X0T.sol";
import {vm} from "./Vm.sol";

/// @dev The four contracts wired as the Ignition module wires them (default shares: 90% to
/// relays, +10% bonus, 1% treasury), with this contract as governance and distributor, and
/// signing helpers over private keys.
abstract contract ProtocolFixture {
    uint64 internal constant EPOCH = 60;
    uint256 internal constant MIN_STAKE = 1_000e18;
    address internal constant TREASURY = address(0x7EA5);

    X0T internal token;
    RelayerRegistry internal registry;
    BandwidthCredit internal credit;
    EpochRewards internal rewards;

    function deployProtocol(uint16 minAttestations) internal {
        X0T.Allocation[] memory genesis = new X0T.Allocation[](1);
        genesis[0] = X0T.Allocation(address(this), 400_000_000e18);
        token = new X0T(address(this), genesis, 100);
        registry = new RelayerRegistry(IERC20(address(token)), address(this), MIN_STAKE, 3600, TREASURY);
        credit = new BandwidthCredit(IERC20(address(token)), address(this), 1e18, TREASURY);
        rewards = new EpochRewards(
            token,
            credit,
            registry,
            address(this),
            EpochRewards.Params({
                rewardPerCell: 1e14,
                poolPerEpoch: 10_000e18,
                relayShareBps: 9_000,
                uptimeBonusBps: 1_000,
                treasuryShareBps: 100,
                minAttestations: minAttestations,
                submissionWindow: 1
            }),
            EPOCH
        );
        token.grantRole(token.MINTER_ROLE(), address(rewards));
        token.setFeeExempt(address(registry), true);
        token.setFeeExempt(address(credit), true);
        token.setFeeExempt(address(this), true);
        credit.setEpochRewards(address(rewards));
    }

    function warpToEpoch(uint64 epoch) internal {
        (, uint64 startsAt) = rewards.epochInfo(epoch);
        vm.warp(startsAt + 1);
    }

    /// @dev Registers the operator of `operatorKey` with the signer of `signerKey`.
    function registerRelayer(uint256 operatorKey, uint256 signerKey) internal returns (address operator) {
        operator = vm.addr(operatorKey);
        address signer = vm.addr(signerKey);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signerKey, registry.signerConsentDigest(operator, signer));
        token.transfer(operator, MIN_STAKE);
        vm.startPrank(operator);
        token.approve(address(registry), MIN_STAKE);
        registry.register(
            string.concat("relay-", Strings.toString(operatorKey), ".test:9000"),
            "DE",
            keccak256(abi.encode(operatorKey)),
            signer,
            abi.encodePacked(r, s, v),
            MIN_STAKE
        );
        vm.stopPrank();
    }

    function authorizeKey(address account, uint256 clientKey, uint128 cap) internal {
        address key = vm.addr(clientKey);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(clientKey, credit.keyAuthorizationDigest(account, key, cap));
        vm.prank(account);
        credit.authorizeClientKey(key, cap, abi.encodePacked(r, s, v));
    }

    function signReceipt(
        uint256 clientKey,
        address relayer,
        uint64 epoch,
        uint64 cells,
        uint96 bytes_
    ) internal view returns (EpochRewards.Receipt memory receipt) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(clientKey, rewards.receiptDigest(relayer, epoch, cells, bytes_));
        receipt = EpochRewards.Receipt(vm.addr(clientKey), cells, bytes_, r, _vs(v, s));
    }

    function _vs(uint8 v, bytes32 s) internal pure returns (bytes32) {
        return bytes32((uint256(v - 27) << 255) | uint256(s));
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (max <= min) return min;
        return min + (x % (max - min + 1));
    }

    function assertLe(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) revert(string.concat(what, ": ", Strings.toString(a), " > ", Strings.toString(b)));
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", Strings.toString(a), " != ", Strings.toString(b)));
    }
}
