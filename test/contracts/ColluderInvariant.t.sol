// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BandwidthCredit} from "../../contracts/BandwidthCredit.sol";
import {EpochRewards} from "../../contracts/EpochRewards.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {X0T} from "../../contracts/X0T.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @dev The attacker: one paying account with many client keys and four staked relayers that
/// attest each other, playing buys, receipts, uptime, claims and epoch changes in any order,
/// while governance moves the price, the reward per cell and the bonus under it.
contract Colluder {
    uint256 private constant RELAYERS = 4;
    uint256 private constant KEYS = 24;

    X0T private immutable token;
    BandwidthCredit private immutable credit;
    EpochRewards private immutable rewards;
    RelayerRegistry private immutable registry;

    address public payer;
    address[RELAYERS] public relayers;
    uint256[RELAYERS] private signerKeys;
    uint256[] private clientKeys; // ascending by address
    mapping(uint64 epoch => mapping(uint256 relayer => uint256)) private nextKey;
    mapping(uint64 epoch => mapping(uint256 relayer => bool)) private attested;
    mapping(uint64 epoch => mapping(uint256 relayer => uint256)) private released;

    /// @notice X0T the payer has put into credit, and X0T minted to the relayers.
    uint256 public paid;
    uint256 public minted;
    uint256 public funded;
    /// @notice Sum over claims of what a (relayer, epoch) was minted beyond what its receipts released.
    uint256 public excess;
    uint256 public claims;

    ProtocolFixtureView private immutable fixture;

    constructor(
        ProtocolFixtureView fixture_,
        address payer_,
        address[RELAYERS] memory relayers_,
        uint256[RELAYERS] memory signerKeys_,
        uint256[] memory clientKeys_
    ) {
        fixture = fixture_;
        (token, credit, rewards, registry) = fixture_.contracts();
        payer = payer_;
        relayers = relayers_;
        signerKeys = signerKeys_;
        clientKeys = clientKeys_;
    }

    function buy(uint256 amount) external {
        amount = _bound(amount, credit.pricePerGB(), 1_000_000e18);
        token.transfer(payer, amount);
        funded += amount;
        vm.startPrank(payer);
        token.approve(address(credit), amount);
        credit.buy(amount);
        vm.stopPrank();
        paid += amount;
    }

    function relay(uint256 relayerSeed, uint64 cells, uint16 cellSize, uint8 hops, uint8 count) external {
        uint64 current = rewards.currentEpoch();
        if (current == 0) return;
        uint256 i = relayerSeed % RELAYERS;
        EpochRewards.Receipt[] memory batch = _batch(
            current - 1,
            i,
            cells,
            uint16(_bound(cellSize, 1, type(uint16).max)),
            uint8(_bound(hops, 1, 8)),
            _bound(count, 1, 3)
        );
        if (batch.length == 0) return;
        (, uint256 escrowBefore) = credit.creditOf(payer);
        vm.prank(relayers[i]);
        rewards.submitReceipts(relayers[i], current - 1, batch);
        (, uint256 escrowAfter) = credit.creditOf(payer);
        released[current - 1][i] += escrowBefore - escrowAfter;
    }

    /// @dev `count` receipts from the relayer's next unused keys (ascending, as the contract wants).
    function _batch(
        uint64 epoch,
        uint256 i,
        uint64 cells,
        uint16 cellSize,
        uint8 hops,
        uint256 count
    ) private returns (EpochRewards.Receipt[] memory batch) {
        uint256 first = nextKey[epoch][i];
        if (first + count > clientKeys.length) return batch;
        nextKey[epoch][i] = first + count;
        batch = new EpochRewards.Receipt[](count);
        for (uint256 j; j < count; ++j) {
            uint64 c = uint64(1 + (uint256(keccak256(abi.encode(cells, j))) % (1 + uint256(cells))));
            batch[j] = fixture.sign(clientKeys[first + j], relayers[i], epoch, c, cellSize, hops);
        }
    }

    function attest(uint256 relayerSeed) external {
        uint64 current = rewards.currentEpoch();
        if (current == 0) return;
        uint64 epoch = current - 1;
        uint256 i = relayerSeed % RELAYERS;
        if (attested[epoch][i]) return;
        attested[epoch][i] = true;
        EpochRewards.Attestation[] memory atts = new EpochRewards.Attestation[](2);
        atts[0] = fixture.attest(signerKeys[(i + 1) % RELAYERS], relayers[i], epoch);
        atts[1] = fixture.attest(signerKeys[(i + 3) % RELAYERS], relayers[i], epoch);
        if (atts[0].signer > atts[1].signer) (atts[0], atts[1]) = (atts[1], atts[0]);
        vm.prank(relayers[i]);
        rewards.submitUptime(relayers[i], epoch, atts);
    }

    function advance(uint8 epochs) external {
        (, uint64 endsAt) = rewards.currentEpochEnd();
        (, , uint64 length, ) = rewards.schedule();
        vm.warp(endsAt + (_bound(epochs, 1, 3) - 1) * length + 1);
    }

    function claim(uint256 relayerSeed, uint64 epochSeed) external {
        uint64 current = rewards.currentEpoch();
        if (current < 2) return;
        uint64 epoch = uint64(_bound(epochSeed, 0, current - 2));
        uint256 i = relayerSeed % RELAYERS;
        address relayer = relayers[i];
        if (rewards.pendingReward(epoch, relayer) == 0) return;
        uint64[] memory epochs = new uint64[](1);
        epochs[0] = epoch;
        uint256 before = token.balanceOf(relayer);
        rewards.claim(relayer, epochs);
        uint256 got = token.balanceOf(relayer) - before;
        minted += got;
        ++claims;
        if (got > released[epoch][i]) excess += got - released[epoch][i];
    }

    /// @dev Governance moves under the attacker: price per GB, reward per cell, uptime bonus.
    function govern(uint256 pricePerGB, uint96 rewardPerCell, uint16 bonusBps) external {
        credit.setPricePerGB(_bound(pricePerGB, 1e9, 1e22));
        (, uint96 pool, , uint16 k) = rewards.params();
        rewards.setParams(EpochRewards.Params(rewardPerCell, pool, uint16(_bound(bonusBps, 0, 5_000)), k));
    }

    function _bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        return max <= min ? min : min + (x % (max - min + 1));
    }
}

/// @dev What the handler needs from the test contract: the contracts and signing.
interface ProtocolFixtureView {
    function contracts() external view returns (X0T, BandwidthCredit, EpochRewards, RelayerRegistry);

    function sign(
        uint256 key,
        address relayer,
        uint64 epoch,
        uint64 cells,
        uint16 cellSize,
        uint8 hops
    ) external view returns (EpochRewards.Receipt memory);

    function attest(
        uint256 signerKey,
        address relayer,
        uint64 epoch
    ) external view returns (EpochRewards.Attestation memory);
}

contract ColluderInvariantTest is ProtocolFixture, ProtocolFixtureView {
    uint256 private constant RELAYERS = 4;
    Colluder private colluder;
    uint256 private initialWealth;

    function setUp() public {
        deployProtocol(2);
        address payer = vm.addr(0xA11CE);
        address[RELAYERS] memory relayers;
        uint256[RELAYERS] memory signerKeys;
        for (uint256 i; i < RELAYERS; ++i) {
            signerKeys[i] = 0x5160 + i;
            relayers[i] = registerRelayer(0x0FE7 + i, signerKeys[i]);
        }
        uint256[] memory keys = _sortedKeys(24);
        for (uint256 i; i < keys.length; ++i) authorizeKey(payer, keys[i]);
        colluder = new Colluder(this, payer, relayers, signerKeys, keys);
        token.transfer(address(colluder), 50_000_000e18);
        token.setFeeExempt(address(colluder), true);
        credit.grantRole(credit.DEFAULT_ADMIN_ROLE(), address(colluder));
        rewards.grantRole(rewards.DEFAULT_ADMIN_ROLE(), address(colluder));
        initialWealth = _wealth();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(colluder);
    }

    /// @notice Rewards minted against the colluder's receipts never exceed what its payer released.
    function invariant_MintedNeverExceedsReleased() public view {
        (, uint256 escrowLeft) = credit.creditOf(colluder.payer());
        assertLe(colluder.minted(), colluder.paid() - escrowLeft, "minted more than released");
    }

    /// @notice Per relayer and epoch: minted never exceeds what that relayer's receipts released.
    function invariant_EachClaimWithinWhatItsReceiptsReleased() public view {
        assertEq(colluder.excess(), 0, "a claim minted more than its receipts released");
    }

    /// @notice The colluders never end up with more X0T than they started with plus what they were given.
    function invariant_ColludersNeverProfit() public view {
        assertLe(_wealth(), initialWealth + colluder.funded(), "colluders got richer");
    }

    /// @notice Supply stays under the cap.
    function invariant_SupplyUnderCap() public view {
        assertLe(token.totalSupply(), token.MAX_SUPPLY(), "supply above cap");
    }

    function contracts() external view returns (X0T, BandwidthCredit, EpochRewards, RelayerRegistry) {
        return (token, credit, rewards, registry);
    }

    function sign(
        uint256 key,
        address relayer,
        uint64 epoch,
        uint64 cells,
        uint16 cellSize,
        uint8 hops
    ) external view returns (EpochRewards.Receipt memory) {
        return signReceipt(key, relayer, epoch, cells, cellSize, hops);
    }

    function attest(
        uint256 signerKey,
        address relayer,
        uint64 epoch
    ) external view returns (EpochRewards.Attestation memory) {
        return signUptime(signerKey, relayer, epoch);
    }

    function _wealth() private view returns (uint256 wealth) {
        address payer = vm.addr(0xA11CE);
        (, uint256 escrow) = credit.creditOf(payer);
        wealth = token.balanceOf(payer) + escrow;
        for (uint256 i; i < RELAYERS; ++i) {
            address relayer = colluder.relayers(i);
            wealth += token.balanceOf(relayer) + registry.getNode(relayer).stake;
        }
    }

    /// @dev Client keys 1..n sorted by address, as EpochRewards wants receipts ordered.
    function _sortedKeys(uint256 n) private pure returns (uint256[] memory keys) {
        keys = new uint256[](n);
        for (uint256 i; i < n; ++i) keys[i] = 0xC0FFEE + i;
        for (uint256 i = 1; i < n; ++i) {
            for (uint256 j = i; j > 0 && vm.addr(keys[j - 1]) > vm.addr(keys[j]); --j) {
                (keys[j - 1], keys[j]) = (keys[j], keys[j - 1]);
            }
        }
    }
}
