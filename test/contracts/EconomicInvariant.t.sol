// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EpochRewards} from "../../contracts/EpochRewards.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @notice A relayer colluding with its own paying client must never mint more X0T than the client
/// paid for the bytes its receipts consumed. The attacker holds the payer account, any number of
/// client keys and four staked relayers that attest each other's uptime; it chooses every field of
/// every receipt and every governed price and rate.
contract EconomicInvariantTest is ProtocolFixture {
    uint256 private constant PAYER_KEY = 0xA11CE;
    uint256 private constant CLIENT_KEY = 0xC11E47;
    uint256 private constant RELAYERS = 4;

    address private payer;
    address[RELAYERS] private relayers;
    uint256[RELAYERS] private signerKeys;

    function setUp() public {
        deployProtocol(1);
        payer = vm.addr(PAYER_KEY);
        for (uint256 i; i < RELAYERS; ++i) {
            signerKeys[i] = 0x5160 + i;
            relayers[i] = registerRelayer(0x0FE7 + i, signerKeys[i]);
        }
        authorizeKey(payer, CLIENT_KEY);
    }

    struct Scenario {
        uint256 paid;
        uint256 pricePerGB;
        uint256 rewardPerCell;
        uint64 cells;
        uint16 cellSize;
        uint8 hops;
        uint8 relayerCount;
        bool uptime;
    }

    /// @dev One epoch of collusion with fuzzed prices, rates, receipt fields, relayer count and bonus.
    function testFuzz_ColludingPairNeverMintsMoreThanItPaid(
        uint256 paid,
        uint256 pricePerGB,
        uint256 rewardPerCell,
        uint64 cells,
        uint16 cellSize,
        uint8 hops,
        uint8 relayerCount,
        bool uptime
    ) public {
        Scenario memory s;
        s.pricePerGB = bound(pricePerGB, 1e6, 1e24);
        s.paid = bound(paid, s.pricePerGB, 100_000_000e18);
        s.rewardPerCell = bound(rewardPerCell, 0, type(uint96).max);
        s.cells = uint64(bound(cells, 1, type(uint64).max));
        s.cellSize = uint16(bound(cellSize, 1, type(uint16).max));
        s.hops = uint8(bound(hops, 1, 8));
        s.relayerCount = uint8(bound(relayerCount, 1, RELAYERS));
        s.uptime = uptime;
        _play(s);
    }

    function _play(Scenario memory s) private {
        credit.setPricePerGB(s.pricePerGB);
        (, , uint16 bonus, uint16 k) = rewards.params();
        rewards.setParams(EpochRewards.Params(uint96(s.rewardPerCell), 10_000e18, bonus, k));
        _buy(s.paid);
        uint256 wealthBefore = _colluderWealth();

        warpToEpoch(1);
        for (uint256 i; i < s.relayerCount; ++i) {
            EpochRewards.Receipt[] memory batch = new EpochRewards.Receipt[](1);
            batch[0] = signReceipt(CLIENT_KEY, relayers[i], 0, s.cells, s.cellSize, s.hops);
            vm.prank(relayers[i]);
            rewards.submitReceipts(relayers[i], 0, batch);
            if (s.uptime) _attest(i, 0);
        }
        warpToEpoch(3);
        uint256 minted = _claimAll(0);

        (, uint256 escrowLeft) = credit.creditOf(payer);
        assertLe(minted, s.paid - escrowLeft, "minted more than the payer released");
        assertLe(_colluderWealth(), wealthBefore, "colluders got richer");
    }

    function _buy(uint256 amount) private {
        token.transfer(payer, amount);
        vm.startPrank(payer);
        token.approve(address(credit), amount);
        credit.buy(amount);
        vm.stopPrank();
    }

    function _attest(uint256 i, uint64 epoch) private {
        uint256 a = (i + 1) % RELAYERS;
        uint256 b = (i + 2) % RELAYERS;
        EpochRewards.Attestation[] memory atts = new EpochRewards.Attestation[](2);
        atts[0] = signUptime(signerKeys[a], relayers[i], epoch);
        atts[1] = signUptime(signerKeys[b], relayers[i], epoch);
        if (atts[0].signer > atts[1].signer) (atts[0], atts[1]) = (atts[1], atts[0]);
        vm.prank(relayers[i]);
        rewards.submitUptime(relayers[i], epoch, atts);
    }

    function _claimAll(uint64 epoch) private returns (uint256 minted) {
        uint64[] memory epochs = new uint64[](1);
        epochs[0] = epoch;
        for (uint256 i; i < RELAYERS; ++i) {
            if (rewards.pendingReward(epoch, relayers[i]) == 0) continue;
            uint256 before = token.balanceOf(relayers[i]);
            rewards.claim(relayers[i], epochs);
            minted += token.balanceOf(relayers[i]) - before;
        }
    }

    /// @dev Everything the colluders hold: wallets, stakes and unspent credit.
    function _colluderWealth() private view returns (uint256 wealth) {
        (, uint256 escrow) = credit.creditOf(payer);
        wealth = token.balanceOf(payer) + escrow;
        for (uint256 i; i < RELAYERS; ++i) {
            wealth += token.balanceOf(relayers[i]) + registry.getNode(relayers[i]).stake;
        }
    }
}
