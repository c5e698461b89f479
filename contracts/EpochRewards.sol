// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {BandwidthCredit} from "./BandwidthCredit.sol";
import {IEpochClock} from "./interfaces/IEpochClock.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";
import {RewardMath} from "./libraries/RewardMath.sol";
import {X0T} from "./X0T.sol";

/// @title EpochRewards: relay rewards minted from payer-signed receipts, epoch by epoch
/// @notice Time is cut into epochs (an hour by default). After an epoch ends, each active relayer
/// submits the receipts its payers signed for that epoch, within `submissionWindow` epochs. A
/// receipt is an EIP-712 signature by a payer's client key over
/// Receipt(relayer, epoch, cumulative cells, cell size, hops); accepting it consumes
/// cells * cellSize / hops bytes of the payer's credit (a GB through 3 hops costs 1 GB in all).
/// Each cell earns `rewardPerCell`, capped at the X0T the payer released for the receipt; a relayer
/// whose uptime for the epoch k other active relayers attest at >= 99% earns `uptimeBonusBps` more,
/// under the same cap. Once the window closes, rewards are minted on claim; if the epoch's total
/// exceeds its pool, every relayer is paid pro rata.
/// @dev Receipts are cumulative per (relayer, epoch, client key, hops): the relayer submits only the
/// latest, and each counts once. Within and across a relayer's batches for an epoch, receipts must
/// ascend strictly by (key, hops), which rejects replays with no storage per receipt.
/// What the payer controls (signature, key, credit, signed fields) rejects only that receipt,
/// with `ReceiptRejected` carrying the custom error; what the relayer controls (caller, epoch,
/// order) reverts the batch.
/// Roles: DEFAULT_ADMIN_ROLE (the governance timelock) sets the parameters. This contract must hold
/// X0T's MINTER_ROLE and be BandwidthCredit's `epochRewards`.
contract EpochRewards is IEpochClock, AccessControl, EIP712 {
    /// @notice EIP-712 type of a payer receipt.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address relayer,uint64 epoch,uint64 cells,uint16 cellSize,uint8 hops)"
    );
    /// @notice EIP-712 type of an uptime attestation by another relayer's signer.
    bytes32 public constant UPTIME_TYPEHASH = keccak256("Uptime(address relayer,uint64 epoch,uint16 uptimeBps)");
    /// @notice Most hops a circuit may have.
    uint8 public constant MAX_HOPS = 8;
    /// @notice Uptime an attestation must state for the bonus (99%).
    uint16 public constant MIN_UPTIME_BPS = 9_900;
    /// @notice Highest uptime bonus governance may set (50%).
    uint16 public constant MAX_UPTIME_BONUS_BPS = 5_000;
    /// @notice Shortest and longest epoch governance may set.
    uint64 public constant MIN_EPOCH_LENGTH = 10 seconds;
    uint64 public constant MAX_EPOCH_LENGTH = 7 days;
    /// @notice Longest submission window governance may set, in epochs.
    uint16 public constant MAX_SUBMISSION_WINDOW = 168;
    /// @notice Most attestations governance may require.
    uint16 public constant MAX_MIN_ATTESTATIONS = 32;

    /// @notice A receipt as submitted: the payer's client key, the signed counts, and the
    /// EIP-2098 compact signature.
    struct Receipt {
        address key;
        uint64 cells;
        uint16 cellSize;
        uint8 hops;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice An uptime attestation: the attesting relayer's signer, the uptime it states, its signature.
    struct Attestation {
        address signer;
        uint16 uptimeBps;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice Governed reward parameters, one storage slot.
    struct Params {
        uint96 rewardPerCell; // X0T wei per cell
        uint96 poolPerEpoch; // most X0T minted per epoch
        uint16 uptimeBonusBps;
        uint16 minAttestations; // k
    }

    /// @notice A relayer's account for one epoch. The first slot is all a claim touches.
    struct RelayerEpoch {
        uint112 base; // capped rewards of accepted receipts
        uint112 boosted; // the same with the uptime bonus, capped likewise
        bool uptimeBonus;
        bool claimed;
        uint168 lastSortKey; // (key << 8 | hops) of the last receipt submitted
    }

    /// @notice An epoch's totals.
    struct EpochTotals {
        uint128 claimable; // sum over relayers of boosted (with bonus) or base
        uint96 pool; // poolPerEpoch when the epoch first took a submission
    }

    /// @notice Epoch schedule, one storage slot: epoch `anchorEpoch` starts at `anchorTime`, epochs
    /// last `length` seconds, and an epoch takes receipts for `submissionWindow` epochs after it ends.
    struct Schedule {
        uint64 anchorEpoch;
        uint64 anchorTime;
        uint64 length;
        uint16 submissionWindow;
    }

    /// @notice The token minted as rewards.
    X0T public immutable token;
    /// @notice The credit that receipts consume.
    BandwidthCredit public immutable credit;
    /// @notice The registry of relayers.
    IRelayerRegistry public immutable registry;

    /// @notice Governed parameters.
    Params public params;
    /// @notice Current epoch schedule.
    Schedule public schedule;

    mapping(uint64 epoch => mapping(address relayer => RelayerEpoch)) private _relayerEpochs;
    mapping(uint64 epoch => EpochTotals) private _epochs;

    /// @notice A receipt was refused; `reason` is the ABI-encoded custom error.
    event ReceiptRejected(uint64 indexed epoch, address indexed relayer, address indexed key, bytes reason);
    /// @notice A batch of receipts was processed; rewards are the batch's, before pool scaling.
    event ReceiptsSubmitted(
        uint64 indexed epoch,
        address indexed relayer,
        uint256 accepted,
        uint256 rejected,
        uint256 baseReward,
        uint256 boostedReward
    );
    /// @notice `relayer`'s uptime for `epoch` was attested by the relayers signing as `attesters`.
    event UptimeAttested(uint64 indexed epoch, address indexed relayer, address[] attesters);
    /// @notice `amount` X0T was minted to `relayer` for `epoch`.
    event RewardClaimed(uint64 indexed epoch, address indexed relayer, uint256 amount);
    /// @notice Governance changed the parameters.
    event ParamsChanged(Params previous, Params current);
    /// @notice Governance changed the epoch length; it applies from `fromEpoch`, starting at `startsAt`.
    event EpochLengthChanged(uint64 fromEpoch, uint64 startsAt, uint64 previousLength, uint64 newLength);
    /// @notice Governance changed the submission window (in epochs).
    event SubmissionWindowChanged(uint16 previous, uint16 current);

    error ZeroAddress();
    error NotRelayerOrSigner(address relayer, address caller);
    error RelayerNotActive(address relayer);
    error EpochNotOpen(uint64 epoch, uint64 currentEpoch);
    error EpochNotFinal(uint64 epoch, uint64 currentEpoch);
    error EmptyBatch();
    error ReceiptReplayed(address key, uint8 hops);
    error ReceiptsNotAscending(uint168 previousSortKey, uint168 sortKey);
    error InvalidHops(uint8 hops, uint8 max);
    error InvalidCellSize(uint16 cellSize);
    error ReceiptTooSmall(uint64 cells, uint16 cellSize, uint8 hops);
    error InvalidReceiptSignature(address key, address recovered);
    error UptimeAlreadyAttested(uint64 epoch, address relayer);
    error NotEnoughAttestations(uint256 count, uint256 required);
    error AttestersNotAscending(address previous, address signer);
    error UptimeOutOfRange(address signer, uint16 uptimeBps, uint16 min);
    error InvalidAttester(address signer);
    error InvalidAttestationSignature(address signer, address recovered);
    error AlreadyClaimed(uint64 epoch, address relayer);
    error NothingToClaim(uint64 epoch, address relayer);
    error InvalidParams(Params params);
    error InvalidEpochLength(uint64 length);
    error InvalidSubmissionWindow(uint16 window, uint16 max);

    /// @param token_ X0T (this contract needs its MINTER_ROLE).
    /// @param credit_ BandwidthCredit (its `epochRewards` must be this contract).
    /// @param registry_ RelayerRegistry.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance).
    /// @param params_ Initial parameters.
    /// @param epochLength Initial epoch length in seconds; epoch 0 starts at deployment.
    /// @param submissionWindow Epochs after an epoch during which it takes receipts (1..168).
    constructor(
        X0T token_,
        BandwidthCredit credit_,
        IRelayerRegistry registry_,
        address admin,
        Params memory params_,
        uint64 epochLength,
        uint16 submissionWindow
    ) EIP712("x0tta6bl4 EpochRewards", "1") {
        if (
            address(token_) == address(0) ||
            address(credit_) == address(0) ||
            address(registry_) == address(0) ||
            admin == address(0)
        ) revert ZeroAddress();
        token = token_;
        credit = credit_;
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setParams(params_);
        if (epochLength < MIN_EPOCH_LENGTH || epochLength > MAX_EPOCH_LENGTH) revert InvalidEpochLength(epochLength);
        schedule = Schedule(0, uint64(block.timestamp), epochLength, 0);
        emit EpochLengthChanged(0, uint64(block.timestamp), 0, epochLength);
        _setSubmissionWindow(submissionWindow);
    }

    // ---------------------------------------------------------------- relayers

    /// @notice Submits receipts for a finished epoch. Caller: the relayer (operator) or its node's
    /// signer; the relayer must be active. Receipts must ascend strictly by (key, hops), also
    /// across batches for the same epoch. Bad receipts are skipped with `ReceiptRejected`.
    /// @param relayer The relayer (operator address) the receipts pay.
    /// @param epoch The epoch they belong to; it must have ended less than `submissionWindow` epochs ago.
    /// @param receipts The receipts.
    function submitReceipts(address relayer, uint64 epoch, Receipt[] calldata receipts) external {
        _checkCaller(relayer);
        _checkOpen(epoch);
        if (receipts.length == 0) revert EmptyBatch();
        Params memory p = params;
        RelayerEpoch storage account = _relayerEpochs[epoch][relayer];
        Batch memory batch = Batch(account.lastSortKey, 0, 0, 0);
        for (uint256 i; i < receipts.length; ++i) {
            _process(relayer, epoch, receipts[i], p, batch);
        }
        account.lastSortKey = batch.lastSortKey;
        if (batch.base != 0 || batch.boosted != 0) {
            account.base += SafeCast.toUint112(batch.base);
            account.boosted += SafeCast.toUint112(batch.boosted);
            EpochTotals storage totals = _openTotals(epoch, p);
            totals.claimable += SafeCast.toUint128(account.uptimeBonus ? batch.boosted : batch.base);
        }
        emit ReceiptsSubmitted(
            epoch,
            relayer,
            receipts.length - batch.rejected,
            batch.rejected,
            batch.base,
            batch.boosted
        );
        credit.settle();
    }

    /// @notice Records that at least `minAttestations` other active relayers attest `relayer`'s
    /// uptime for `epoch` at >= 99%, which pays it the uptime bonus. Same caller and window rules
    /// as `submitReceipts`; attestations must ascend strictly by signer.
    /// @param relayer The attested relayer.
    /// @param epoch The epoch attested.
    /// @param attestations Signatures of other relayers' signers over Uptime(relayer, epoch, uptimeBps).
    function submitUptime(address relayer, uint64 epoch, Attestation[] calldata attestations) external {
        _checkCaller(relayer);
        _checkOpen(epoch);
        RelayerEpoch storage account = _relayerEpochs[epoch][relayer];
        if (account.uptimeBonus) revert UptimeAlreadyAttested(epoch, relayer);
        Params memory p = params;
        if (attestations.length < p.minAttestations)
            revert NotEnoughAttestations(attestations.length, p.minAttestations);
        address[] memory signers = new address[](attestations.length);
        address previous;
        for (uint256 i; i < attestations.length; ++i) {
            Attestation calldata a = attestations[i];
            if (a.signer <= previous) revert AttestersNotAscending(previous, a.signer);
            previous = a.signer;
            if (a.uptimeBps < MIN_UPTIME_BPS || a.uptimeBps > RewardMath.BPS)
                revert UptimeOutOfRange(a.signer, a.uptimeBps, MIN_UPTIME_BPS);
            address attester = registry.operatorOf(a.signer);
            if (attester == address(0) || attester == relayer || !registry.isActive(attester))
                revert InvalidAttester(a.signer);
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(UPTIME_TYPEHASH, relayer, epoch, a.uptimeBps)));
            (address recovered, , ) = ECDSA.tryRecover(digest, a.r, a.vs);
            if (recovered != a.signer) revert InvalidAttestationSignature(a.signer, recovered);
            signers[i] = a.signer;
        }
        account.uptimeBonus = true;
        EpochTotals storage totals = _openTotals(epoch, p);
        totals.claimable += account.boosted - account.base;
        emit UptimeAttested(epoch, relayer, signers);
    }

    /// @notice Mints `relayer`'s rewards for finished, closed epochs. Anyone may call; the tokens
    /// go to `relayer`.
    /// @param relayer The relayer (operator address).
    /// @param epochs Epochs to claim, each once.
    /// @return total X0T minted.
    function claim(address relayer, uint64[] calldata epochs) external returns (uint256 total) {
        uint64 current = currentEpoch();
        uint64 window = schedule.submissionWindow;
        for (uint256 i; i < epochs.length; ++i) {
            uint64 epoch = epochs[i];
            if (uint256(epoch) + window >= current) revert EpochNotFinal(epoch, current);
            RelayerEpoch storage account = _relayerEpochs[epoch][relayer];
            if (account.claimed) revert AlreadyClaimed(epoch, relayer);
            uint256 claimable = account.uptimeBonus ? account.boosted : account.base;
            if (claimable == 0) revert NothingToClaim(epoch, relayer);
            account.claimed = true;
            EpochTotals memory totals = _epochs[epoch];
            uint256 reward = RewardMath.poolShare(claimable, totals.claimable, totals.pool);
            total += reward;
            emit RewardClaimed(epoch, relayer, reward);
        }
        token.mint(relayer, total);
    }

    // ---------------------------------------------------------------- governance

    /// @notice Sets the reward parameters for batches submitted from now on. Governance only.
    /// @param params_ rewardPerCell, poolPerEpoch (non-zero), uptimeBonusBps (<= 50%),
    /// minAttestations (1..32).
    function setParams(Params calldata params_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParams(params_);
    }

    /// @notice Sets the epoch length from the next epoch on; epoch numbers stay continuous.
    /// Governance only.
    /// @param length Seconds, MIN_EPOCH_LENGTH..MAX_EPOCH_LENGTH.
    function setEpochLength(uint64 length) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (length < MIN_EPOCH_LENGTH || length > MAX_EPOCH_LENGTH) revert InvalidEpochLength(length);
        (uint64 epoch, uint64 endsAt) = currentEpochEnd();
        Schedule storage s = schedule;
        emit EpochLengthChanged(epoch + 1, endsAt, s.length, length);
        (s.anchorEpoch, s.anchorTime, s.length) = (epoch + 1, endsAt, length);
    }

    /// @notice Sets how many epochs after its end an epoch takes receipts and uptime; claims open
    /// after that. Governance only.
    /// @param window Epochs, 1..MAX_SUBMISSION_WINDOW.
    function setSubmissionWindow(uint16 window) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setSubmissionWindow(window);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IEpochClock
    function currentEpoch() public view returns (uint64 epoch) {
        (epoch, ) = currentEpochEnd();
    }

    /// @notice The current epoch and the time it ends.
    function currentEpochEnd() public view returns (uint64 epoch, uint64 endsAt) {
        Schedule memory s = schedule;
        if (block.timestamp < s.anchorTime) return (s.anchorEpoch - 1, s.anchorTime);
        uint64 elapsed = (uint64(block.timestamp) - s.anchorTime) / s.length;
        epoch = s.anchorEpoch + elapsed;
        endsAt = s.anchorTime + (elapsed + 1) * s.length;
    }

    /// @notice `relayer`'s account for `epoch`.
    function relayerEpoch(uint64 epoch, address relayer) external view returns (RelayerEpoch memory) {
        return _relayerEpochs[epoch][relayer];
    }

    /// @notice Totals of `epoch`.
    function epochTotals(uint64 epoch) external view returns (EpochTotals memory) {
        return _epochs[epoch];
    }

    /// @notice What `relayer` would be minted for `epoch` if the totals stay as they are.
    function pendingReward(uint64 epoch, address relayer) external view returns (uint256) {
        RelayerEpoch memory account = _relayerEpochs[epoch][relayer];
        if (account.claimed) return 0;
        EpochTotals memory totals = _epochs[epoch];
        uint256 claimable = account.uptimeBonus ? account.boosted : account.base;
        return RewardMath.poolShare(claimable, totals.claimable, totals.pool);
    }

    /// @notice EIP-712 digest of a receipt, as a client key signs it.
    function receiptDigest(
        address relayer,
        uint64 epoch,
        uint64 cells,
        uint16 cellSize,
        uint8 hops
    ) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, relayer, epoch, cells, cellSize, hops)));
    }

    // ---------------------------------------------------------------- internals

    /// @dev Running totals of one `submitReceipts` call.
    struct Batch {
        uint168 lastSortKey;
        uint256 base;
        uint256 boosted;
        uint256 rejected;
    }

    /// @dev Orders, checks and books one receipt of a batch.
    function _process(
        address relayer,
        uint64 epoch,
        Receipt calldata receipt,
        Params memory p,
        Batch memory batch
    ) private {
        uint168 sortKey = (uint168(uint160(receipt.key)) << 8) | receipt.hops;
        uint168 last = batch.lastSortKey;
        if (sortKey <= last) {
            if (sortKey == last) revert ReceiptReplayed(receipt.key, receipt.hops);
            revert ReceiptsNotAscending(last, sortKey);
        }
        batch.lastSortKey = sortKey;
        (bool accepted, bytes memory reason, uint256 base, uint256 boosted) = _accept(relayer, epoch, receipt, p);
        if (!accepted) {
            ++batch.rejected;
            emit ReceiptRejected(epoch, relayer, receipt.key, reason);
        } else {
            batch.base += base;
            batch.boosted += boosted;
        }
    }

    /// @dev Checks one receipt and consumes its credit. Returns whether it was accepted, the
    /// custom error that refused it otherwise, and its capped rewards.
    function _accept(
        address relayer,
        uint64 epoch,
        Receipt calldata receipt,
        Params memory p
    ) private returns (bool accepted, bytes memory reason, uint256 base, uint256 boosted) {
        if (receipt.hops == 0 || receipt.hops > MAX_HOPS)
            return (false, abi.encodeWithSelector(InvalidHops.selector, receipt.hops, MAX_HOPS), 0, 0);
        if (receipt.cellSize == 0)
            return (false, abi.encodeWithSelector(InvalidCellSize.selector, receipt.cellSize), 0, 0);
        uint256 bytesUsed = (uint256(receipt.cells) * receipt.cellSize) / receipt.hops;
        if (bytesUsed == 0) {
            reason = abi.encodeWithSelector(ReceiptTooSmall.selector, receipt.cells, receipt.cellSize, receipt.hops);
            return (false, reason, 0, 0);
        }
        bytes32 digest = receiptDigest(relayer, epoch, receipt.cells, receipt.cellSize, receipt.hops);
        (address recovered, , ) = ECDSA.tryRecover(digest, receipt.r, receipt.vs);
        if (recovered != receipt.key)
            return (false, abi.encodeWithSelector(InvalidReceiptSignature.selector, receipt.key, recovered), 0, 0);
        // The payer's side (key, revocation, balance) is BandwidthCredit's to judge; its custom
        // error becomes the rejection reason (empty only if the call ran out of gas).
        try credit.consume(receipt.key, relayer, epoch, bytesUsed) returns (uint256 value) {
            (base, boosted) = RewardMath.receiptReward(receipt.cells, p.rewardPerCell, p.uptimeBonusBps, value);
            accepted = true;
        } catch (bytes memory err) {
            reason = err;
        }
    }

    function _checkCaller(address relayer) private view {
        (address signer, bool active) = registry.signerOf(relayer);
        if (msg.sender != relayer && msg.sender != signer) revert NotRelayerOrSigner(relayer, msg.sender);
        if (!active) revert RelayerNotActive(relayer);
    }

    function _checkOpen(uint64 epoch) private view {
        uint64 current = currentEpoch();
        if (epoch >= current || current - epoch > schedule.submissionWindow) revert EpochNotOpen(epoch, current);
    }

    function _openTotals(uint64 epoch, Params memory p) private returns (EpochTotals storage totals) {
        totals = _epochs[epoch];
        if (totals.pool == 0) totals.pool = p.poolPerEpoch;
    }

    function _setParams(Params memory p) private {
        if (
            p.poolPerEpoch == 0 ||
            p.uptimeBonusBps > MAX_UPTIME_BONUS_BPS ||
            p.minAttestations == 0 ||
            p.minAttestations > MAX_MIN_ATTESTATIONS
        ) revert InvalidParams(p);
        emit ParamsChanged(params, p);
        params = p;
    }

    function _setSubmissionWindow(uint16 window) private {
        if (window == 0 || window > MAX_SUBMISSION_WINDOW)
            revert InvalidSubmissionWindow(window, MAX_SUBMISSION_WINDOW);
        emit SubmissionWindowChanged(schedule.submissionWindow, window);
        schedule.submissionWindow = window;
    }
}
