// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {BandwidthCredit} from "../../contracts/BandwidthCredit.sol";
import {EpochRewards} from "../../contracts/EpochRewards.sol";
import {X0T} from "../../contracts/X0T.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @dev The world the invariant runner drives: a hostile payer with its own relay (the colluder)
/// beside an honest relay that follows the documented protocol: it serves the payer only up to
/// what the payer's landed lock for it still covers, holds the payer's latest cumulative receipt,
/// and submits it in the epoch after. The payer may buy, lock for either relay, sign its own relay
/// any receipt for any open epoch, revoke its key, try to release locks, while time moves on.
contract PaymentWorld is ProtocolFixture {
    uint256 internal constant PAYER_KEY = 0xB0B;
    uint256 internal constant CLIENT_KEY = 0xC11E;
    address public payer;
    address public honest;
    address public colluder;
    uint256 private honestSigner = 0x51;

    /// @notice Bytes the honest relay carried, and bytes it carried but has not submitted yet.
    uint96 public served;
    uint96 public unsubmitted;
    uint64 public cellsServed;
    uint64 private lastServedEpoch;
    bool private keyRevoked;
    /// @dev The world keeps its own clock: time moves only through `advance`, in which the honest
    /// relay submits (the invariant runner may change block time between calls).
    uint256 private clock;

    modifier pinned() {
        vm.warp(clock);
        _;
    }
    /// @notice X0T the attacker side (payer + colluder) put in, for the profit check.
    uint256 public funded;

    constructor() {
        deployProtocol(1);
        vm.warp(1_000);
        honest = registerRelayer(0xA1, honestSigner);
        colluder = registerRelayer(0xA2, 0x52);
        payer = vm.addr(PAYER_KEY);
        authorizeKey(payer, CLIENT_KEY, type(uint128).max);
        warpToEpoch(1);
        lastServedEpoch = 1;
        clock = block.timestamp;
    }

    function buy(uint256 amount) external pinned {
        amount = bound(amount, 1e18, 1_000_000e18);
        token.transfer(payer, amount);
        funded += amount;
        vm.startPrank(payer);
        token.approve(address(credit), amount);
        credit.buy(amount);
        vm.stopPrank();
    }

    function lockFor(bool forHonest, uint128 bytes_, uint8 epochsAhead) external pinned {
        (uint128 free, ) = credit.creditOf(payer);
        if (free == 0) return;
        bytes_ = uint128(bound(bytes_, 1, free));
        uint64 expires = rewards.currentEpoch() + uint64(bound(epochsAhead, 0, 3));
        vm.prank(payer);
        credit.lock(forHonest ? honest : colluder, bytes_, expires);
    }

    /// @dev The honest relay serves at most what the lock still covers beyond what it has served
    /// but not submitted, and only in an epoch the lock still pays.
    function serve(uint96 bytes_) external pinned {
        BandwidthCredit.Lock memory l = credit.lockOf(payer, honest);
        uint64 current = rewards.currentEpoch();
        if (current > l.expiresEpoch || current != lastServedEpoch) return;
        uint256 room = l.bytesLeft - unsubmitted;
        if (room == 0) return;
        bytes_ = uint96(bound(bytes_, 1, room));
        served += bytes_;
        unsubmitted += bytes_;
        cellsServed += uint64(bytes_ / 1_000) + 1;
    }

    function selfDeal(uint96 bytes_, uint64 cells, bool previousEpoch) external pinned {
        uint64 current = rewards.currentEpoch();
        uint64 epoch = previousEpoch ? current - 1 : current;
        if (!previousEpoch) return; // receipts are submitted after their epoch
        EpochRewards.Receipt[] memory batch = new EpochRewards.Receipt[](1);
        batch[0] = signReceipt(CLIENT_KEY, colluder, epoch, cells, bytes_);
        vm.prank(colluder);
        try rewards.submitReceipts(colluder, epoch, batch) {} catch {}
    }

    function revoke() external pinned {
        if (keyRevoked) return;
        keyRevoked = true;
        vm.prank(payer);
        credit.revokeClientKey(vm.addr(CLIENT_KEY));
    }

    function release(bool forHonest) external pinned {
        try credit.releaseLock(payer, forHonest ? honest : colluder) {} catch {}
    }

    /// @dev Moves to the next epoch; the honest relay submits the receipt of the epoch it served in.
    function advance() external pinned {
        uint64 epoch = rewards.currentEpoch();
        warpToEpoch(epoch + 1);
        clock = block.timestamp;
        if (unsubmitted != 0) {
            EpochRewards.Receipt[] memory batch = new EpochRewards.Receipt[](1);
            batch[0] = signReceipt(CLIENT_KEY, honest, lastServedEpoch, cellsServed, served);
            vm.prank(honest);
            rewards.submitReceipts(honest, lastServedEpoch, batch);
            unsubmitted = 0;
        }
        lastServedEpoch = epoch + 1;
        // Anyone may claim for both relays once an epoch is final.
        if (epoch >= 1) {
            uint64[] memory epochs = new uint64[](1);
            epochs[0] = epoch - 1;
            try rewards.claim(honest, epochs) {} catch {}
            try rewards.claim(colluder, epochs) {} catch {}
        }
    }

    function paidToHonest() external view returns (uint256) {
        return credit.lockOf(payer, honest).bytesPaid;
    }

    function lockedForHonest() external view returns (uint256) {
        return credit.lockOf(payer, honest).bytesLeft;
    }

    function attackerWealth() external view returns (uint256) {
        (, uint128 escrow) = credit.creditOf(payer);
        BandwidthCredit.Lock memory l = credit.lockOf(payer, colluder);
        return token.balanceOf(payer) + token.balanceOf(colluder) + escrow + l.escrow;
    }

    function tokenAddress() external view returns (X0T) {
        return token;
    }
}

contract HonestRelayInvariantTest {
    PaymentWorld private world;
    uint256 private colluderStart;

    function setUp() public {
        world = new PaymentWorld();
        colluderStart = world.attackerWealth();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(world);
    }

    /// @notice Exposure 0: everything the honest relay served and submitted is paid, and what it
    /// served but has not submitted is still covered by its lock, whatever the payer did.
    function invariant_HonestRelayIsPaidForEverythingItServed() public view {
        require(world.paidToHonest() + world.unsubmitted() == world.served(), "honest relay unpaid");
        if (world.lockedForHonest() < world.unsubmitted())
            revert(
                string.concat(
                    "lock no longer covers served bytes: locked ",
                    Strings.toString(world.lockedForHonest()),
                    " unsubmitted ",
                    Strings.toString(world.unsubmitted()),
                    " served ",
                    Strings.toString(world.served()),
                    " paid ",
                    Strings.toString(world.paidToHonest())
                )
            );
    }

    /// @notice The payer and its own relay together never end with more X0T than they put in.
    function invariant_SelfDealingNeverProfits() public view {
        require(world.attackerWealth() <= colluderStart + world.funded(), "attacker gained");
    }
}
