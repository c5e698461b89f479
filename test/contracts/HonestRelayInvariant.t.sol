// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {BandwidthCredit} from "../../contracts/BandwidthCredit.sol";
import {EpochRewards} from "../../contracts/EpochRewards.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @dev The world the invariant runner drives: a hostile payer with two devices (client keys) and
/// its own relay (the colluder), beside an honest relay that follows the documented protocol: it
/// serves each of the payer's keys only while the payer's landed lock for it covers everything it
/// has carried and not yet been paid, holds each key's latest cumulative receipt, and submits them
/// at the start of the next epoch. The payer may buy, lock for either relay (itself or through a
/// key-signed request that anyone lands), sign its own relay any receipt, revoke a key, cancel
/// nonces and try to release locks; governance may change the epoch length and the window; time
/// moves on only through `advance`.
contract PaymentWorld is ProtocolFixture {
    uint256 internal constant PAYER_KEY = 0xB0B;
    uint256[2] internal clientKeys = [uint256(0xC11E), uint256(0xC11F)];
    address public payer;
    address public honest;
    address public colluder;

    /// @notice Per key: bytes the honest relay carried, and what of it it has not submitted yet.
    uint96[2] public served;
    uint96[2] public unsubmitted;
    uint64[2] private cellsServed;
    uint64 private lastServedEpoch;
    uint256 private nonce;
    /// @dev The world keeps its own clock (the runner may move block time between calls).
    uint256 private clock;
    /// @notice X0T the attacker side (payer + colluder) put in, for the profit check.
    uint256 public funded;

    modifier pinned() {
        vm.warp(clock);
        _;
    }

    constructor() {
        deployProtocol(1);
        vm.warp(1_000);
        honest = registerRelayer(0xA1, 0x51);
        colluder = registerRelayer(0xA2, 0x52);
        payer = vm.addr(PAYER_KEY);
        authorizeKey(payer, clientKeys[0], type(uint96).max);
        authorizeKey(payer, clientKeys[1], type(uint96).max);
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

    function lockFor(bool forHonest, uint96 bytes_, uint8 epochsAhead, bool bySignedRequest) external pinned {
        (uint128 free, ) = credit.creditOf(payer);
        if (free == 0) return;
        bytes_ = uint96(bound(bytes_, 1, free > type(uint96).max ? type(uint96).max : free));
        uint64 expires = rewards.currentEpoch() + uint64(bound(epochsAhead, 0, 3));
        address relayer = forHonest ? honest : colluder;
        if (!bySignedRequest) {
            vm.prank(payer);
            credit.lock(relayer, bytes_, expires);
            return;
        }
        BandwidthCredit.LockRequest[] memory requests = new BandwidthCredit.LockRequest[](1);
        requests[0] = _request(relayer, bytes_, expires);
        credit.openLocks(requests); // a refused request (revoked key) is skipped
    }

    /// @dev The honest relay serves key `k` only up to what the lock still covers beyond everything
    /// it carried and has not submitted, and only in an epoch the lock still pays.
    function serve(uint96 bytes_, bool second) external pinned {
        uint256 k = second ? 1 : 0;
        BandwidthCredit.Lock memory l = credit.lockOf(payer, honest);
        uint64 current = rewards.currentEpoch();
        if (current > l.expiresEpoch || current != lastServedEpoch) return;
        (, , , , uint64 revokedAfter) = _key(k);
        if (current > revokedAfter) return; // a revoked key's receipts for later epochs are worthless
        uint256 room = l.bytesLeft - unsubmitted[0] - unsubmitted[1];
        if (room == 0) return;
        bytes_ = uint96(bound(bytes_, 1, room));
        served[k] += bytes_;
        unsubmitted[k] += bytes_;
        cellsServed[k] += uint64(bytes_ / 1_000) + 1;
    }

    function selfDeal(uint96 bytes_, uint64 cells, bool second) external pinned {
        uint64 epoch = rewards.currentEpoch() - 1;
        EpochRewards.Receipt[] memory batch = new EpochRewards.Receipt[](1);
        batch[0] = signReceipt(clientKeys[second ? 1 : 0], colluder, epoch, cells, bytes_);
        vm.prank(colluder);
        try rewards.submitReceipts(colluder, epoch, batch) {} catch {}
    }

    function revoke(bool second) external pinned {
        vm.prank(payer);
        try credit.revokeClientKey(vm.addr(clientKeys[second ? 1 : 0])) {} catch {}
    }

    function cancelNonce(uint8 ahead) external pinned {
        vm.prank(payer);
        credit.cancelLockNonce(vm.addr(clientKeys[nonce % 2]), nonce + 1 + (ahead % 4));
    }

    function release(bool forHonest) external pinned {
        try credit.releaseLock(payer, forHonest ? honest : colluder) {} catch {}
    }

    /// @dev Governance changes the epoch length (1 minute to 2 hours) and the window (1 to 4 epochs).
    function govern(uint32 length, uint8 window) external pinned {
        rewards.setEpochLength(uint64(bound(length, 60, 7_200)));
        EpochRewards.Params memory p = rewards.params();
        p.submissionWindow = uint16(bound(window, 1, 4));
        rewards.setParams(p);
    }

    /// @dev Moves to the next epoch; the honest relay submits each key's latest receipt of the epoch
    /// it served in, at once.
    function advance() external pinned {
        uint64 epoch = rewards.currentEpoch();
        warpToEpoch(epoch + 1);
        clock = block.timestamp;
        uint256 n = (unsubmitted[0] != 0 ? 1 : 0) + (unsubmitted[1] != 0 ? 1 : 0);
        if (n != 0) {
            EpochRewards.Receipt[] memory batch = new EpochRewards.Receipt[](n);
            uint256 i;
            for (uint256 k; k < 2; ++k) {
                if (unsubmitted[k] == 0) continue;
                batch[i++] = signReceipt(clientKeys[k], honest, lastServedEpoch, cellsServed[k], served[k]);
            }
            vm.prank(honest);
            rewards.submitReceipts(honest, lastServedEpoch, batch);
            unsubmitted = [uint96(0), uint96(0)];
        }
        lastServedEpoch = epoch + 1;
        uint64[] memory epochs = new uint64[](1);
        epochs[0] = epoch;
        try rewards.claim(honest, epochs) {} catch {}
        try rewards.claim(colluder, epochs) {} catch {}
    }

    function _request(
        address relayer,
        uint96 bytes_,
        uint64 expires
    ) private returns (BandwidthCredit.LockRequest memory) {
        uint256 signer = clientKeys[nonce % 2];
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signer, credit.lockDigest(relayer, bytes_, expires, ++nonce));
        return BandwidthCredit.LockRequest(vm.addr(signer), relayer, bytes_, expires, nonce, r, _vs(v, s));
    }

    function paidToHonest(uint256 k) external view returns (uint256) {
        return credit.channelOf(vm.addr(clientKeys[k]), honest).bytesPaid;
    }

    function lockedForHonest() external view returns (uint256) {
        return credit.lockOf(payer, honest).bytesLeft;
    }

    function attackerWealth() external view returns (uint256) {
        (, uint128 escrow) = credit.creditOf(payer);
        return token.balanceOf(payer) + token.balanceOf(colluder) + escrow + credit.lockOf(payer, colluder).escrow;
    }

    function _key(uint256 k) private view returns (address, uint96, uint96, uint64, uint64 revokedAfter) {
        (address account, uint64 after_, uint96 cap, uint96 spent, uint64 spendEpoch) = credit.clientKeys(
            vm.addr(clientKeys[k])
        );
        return (account, cap, spent, spendEpoch, after_);
    }
}

contract HonestRelayInvariantTest {
    PaymentWorld private world;
    uint256 private attackerStart;

    function setUp() public {
        world = new PaymentWorld();
        attackerStart = world.attackerWealth();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(world);
    }

    /// @notice Exposure 0: everything the honest relay served either key and submitted is paid, and
    /// what it served but has not submitted is still covered by the lock, whatever the payer or
    /// governance did.
    function invariant_HonestRelayIsPaidForEverythingItServed() public view {
        for (uint256 k; k < 2; ++k) {
            if (world.paidToHonest(k) + world.unsubmitted(k) != world.served(k))
                revert(
                    string.concat(
                        "honest relay unpaid on key ",
                        Strings.toString(k),
                        ": served ",
                        Strings.toString(world.served(k)),
                        " paid ",
                        Strings.toString(world.paidToHonest(k))
                    )
                );
        }
        require(world.lockedForHonest() >= world.unsubmitted(0) + world.unsubmitted(1), "lock no longer covers");
    }

    /// @notice The payer and its own relay together never end with more X0T than they put in.
    function invariant_SelfDealingNeverProfits() public view {
        require(world.attackerWealth() <= attackerStart + world.funded(), "attacker gained");
    }
}
