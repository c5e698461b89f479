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
/// @notice Time is cut into epochs (an hour by default). After an epoch ends, each relayer that was
/// active in it submits its payers' latest receipts for it, within the epoch's submission window.
/// A receipt is an EIP-712 signature by a payer's client key over Receipt(relayer, epoch, cells,
/// bytes), the cumulative cells carried and bytes owed on the payer's channel with that relayer;
/// BandwidthCredit pays the new part from the payer's lock for that relayer (see there).
/// A receipt earns min(new cells * rewardPerCell, relayShare of the X0T its payer released); a
/// relayer whose uptime in the epoch at least k other relayers, registered before it started,
/// attest at >= 99% of their probes earns `uptimeBonusBps` more on both terms. The rest of the
/// payer's X0T is burned, `treasuryShareBps` of it to the treasury, and relayShare * (1 + bonus)
/// + treasuryShare <= 100%: a relayer paying itself always loses, and no receipt adds to supply.
/// Once the window closes, rewards are minted on claim, pro rata if the epoch's total exceeds its pool.
/// @dev Every governed value (rewards, shares, pool, window, epoch length) is fixed per epoch: a
/// change applies from the next epoch, so it never re-opens, re-prices or strands an epoch already
/// begun. Eras record the changes; lookups are binary searches over them.
/// What the payer controls (signature, key, lock) rejects only that receipt, with
/// `ReceiptRejected` carrying the custom error; what the relayer controls (caller, epoch) reverts.
/// Roles: DEFAULT_ADMIN_ROLE (the governance timelock) sets the parameters. This contract must hold
/// X0T's MINTER_ROLE and be BandwidthCredit's `epochRewards`.
contract EpochRewards is IEpochClock, AccessControl, EIP712 {
    /// @notice EIP-712 type of a payer receipt (cells and bytes are cumulative per payer channel).
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address relayer,uint64 epoch,uint64 cells,uint96 bytes)"
    );
    /// @notice EIP-712 type of an uptime attestation by another relayer's signer: it sent `probes`
    /// probes to `relayer` during `epoch`, `answered` were answered; `measurements` commits to its log.
    bytes32 public constant UPTIME_TYPEHASH = keccak256(
        "Uptime(address relayer,uint64 epoch,uint32 probes,uint32 answered,bytes32 measurements)"
    );
    /// @notice Uptime an attestation must state for the bonus (99%).
    uint16 public constant MIN_UPTIME_BPS = 9_900;
    /// @notice Fewest probes an attestation must rest on.
    uint32 public constant MIN_PROBES = 100;
    /// @notice Highest uptime bonus governance may set (50%).
    uint16 public constant MAX_UPTIME_BONUS_BPS = 5_000;
    /// @notice Shortest and longest epoch governance may set.
    uint64 public constant MIN_EPOCH_LENGTH = 10 seconds;
    uint64 public constant MAX_EPOCH_LENGTH = 7 days;
    /// @notice Longest submission window governance may set, in epochs.
    uint16 public constant MAX_SUBMISSION_WINDOW = 168;
    /// @notice Most attestations governance may require.
    uint16 public constant MAX_MIN_ATTESTATIONS = 32;
    uint16 private constant BPS = 10_000;

    /// @notice A receipt as submitted: the payer's client key, the signed cumulative counts, and
    /// the EIP-2098 compact signature.
    struct Receipt {
        address key;
        uint64 cells;
        uint96 bytes_;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice An uptime attestation: the attesting relayer's signer, its measurements, its signature.
    struct Attestation {
        address signer;
        uint32 probes;
        uint32 answered;
        bytes32 measurements;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice Governed parameters, one storage slot.
    struct Params {
        uint80 rewardPerCell; // X0T wei per cell
        uint96 poolPerEpoch; // most X0T minted per epoch
        uint16 relayShareBps; // share of a payer's X0T a receipt may earn without the bonus
        uint16 uptimeBonusBps; // added to both terms with attested uptime
        uint16 treasuryShareBps; // share of a payer's X0T sent to the treasury
        uint16 minAttestations; // k
        uint16 submissionWindow; // epochs after an epoch ends during which it takes receipts
    }

    /// @notice From epoch `fromEpoch`, starting at `startTime`, epochs last `length` seconds and
    /// follow `params`.
    struct Era {
        uint64 fromEpoch;
        uint64 startTime;
        uint64 length;
        Params params;
    }

    /// @notice A relayer's account for one epoch, one storage slot.
    struct RelayerEpoch {
        uint112 base; // capped rewards of accepted receipts
        uint112 boosted; // the same with the uptime bonus, capped likewise
        bool uptimeBonus;
        bool claimed;
    }

    /// @notice The token minted as rewards.
    X0T public immutable token;
    /// @notice The credit that receipts consume.
    BandwidthCredit public immutable credit;
    /// @notice The registry of relayers.
    IRelayerRegistry public immutable registry;

    Era[] private _eras;
    mapping(uint64 epoch => mapping(address relayer => RelayerEpoch)) private _relayerEpochs;
    mapping(uint64 epoch => uint256 claimable) private _claimable;

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
    /// @notice Governance scheduled new parameters and epoch length from `fromEpoch` (starting at `startTime`).
    event EraScheduled(uint64 indexed fromEpoch, uint64 startTime, uint64 length, Params params);

    error ZeroAddress();
    error NotRelayerOrSigner(address relayer, address caller);
    error RelayerNotActive(address relayer, uint64 epoch);
    error EpochNotOpen(uint64 epoch, uint64 currentEpoch);
    error EpochNotFinal(uint64 epoch, uint64 currentEpoch);
    error EmptyBatch();
    error InvalidReceiptSignature(address key, address recovered);
    error UptimeAlreadyAttested(uint64 epoch, address relayer);
    error NotEnoughAttestations(uint256 count, uint256 required);
    error AttestersNotAscending(address previous, address signer);
    error UptimeBelowMinimum(address signer, uint32 probes, uint32 answered);
    error InvalidAttester(address signer);
    error InvalidAttestationSignature(address signer, address recovered);
    error AlreadyClaimed(uint64 epoch, address relayer);
    error NothingToClaim(uint64 epoch, address relayer);
    error InvalidParams(Params params);
    error InvalidEpochLength(uint64 length);

    /// @param token_ X0T (this contract needs its MINTER_ROLE).
    /// @param credit_ BandwidthCredit (its `epochRewards` must be this contract).
    /// @param registry_ RelayerRegistry.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (governance).
    /// @param params_ Initial parameters.
    /// @param epochLength Initial epoch length in seconds; epoch 0 starts at deployment.
    constructor(
        X0T token_,
        BandwidthCredit credit_,
        IRelayerRegistry registry_,
        address admin,
        Params memory params_,
        uint64 epochLength
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
        _checkParams(params_);
        _checkLength(epochLength);
        Era memory first = Era(0, uint64(block.timestamp), epochLength, params_);
        _eras.push(first);
        emit EraScheduled(0, first.startTime, epochLength, params_);
    }

    // ---------------------------------------------------------------- relayers

    /// @notice Submits receipts for a finished epoch. Caller: the relayer (operator) or its node's
    /// signer; the relayer must have been active at the epoch's end under that epoch's rules.
    /// Bad receipts are skipped with `ReceiptRejected`; a receipt that paid nothing new may be sent
    /// again later (after a top-up of the lock it pays the rest).
    /// @param relayer The relayer (operator address) the receipts pay.
    /// @param epoch The epoch they belong to; it must have ended, within its submission window.
    /// @param receipts The receipts, one per payer key (any order).
    function submitReceipts(address relayer, uint64 epoch, Receipt[] calldata receipts) external {
        Era memory era = _checkSubmission(relayer, epoch);
        if (receipts.length == 0) revert EmptyBatch();
        Params memory p = era.params;
        uint256 base;
        uint256 boosted;
        uint256 value;
        uint256 rejected;
        for (uint256 i; i < receipts.length; ++i) {
            Receipt calldata receipt = receipts[i];
            (bytes memory reason, uint256 newCells, uint256 released) = _accept(relayer, epoch, receipt);
            if (reason.length != 0) {
                ++rejected;
                emit ReceiptRejected(epoch, relayer, receipt.key, reason);
                continue;
            }
            (uint256 b, uint256 bb) = RewardMath.receiptReward(
                newCells,
                p.rewardPerCell,
                p.relayShareBps,
                p.uptimeBonusBps,
                released
            );
            base += b;
            boosted += bb;
            value += released;
        }
        RelayerEpoch storage account = _relayerEpochs[epoch][relayer];
        if (value != 0) {
            account.base += SafeCast.toUint112(base);
            account.boosted += SafeCast.toUint112(boosted);
            _claimable[epoch] += account.uptimeBonus ? boosted : base;
        }
        emit ReceiptsSubmitted(epoch, relayer, receipts.length - rejected, rejected, base, boosted);
        if (value != 0) credit.settle(value, (value * p.treasuryShareBps) / BPS);
    }

    /// @notice Records that at least `minAttestations` other relayers, registered and active before
    /// `epoch` started, measured `relayer` up for >= 99% of at least MIN_PROBES probes in `epoch`,
    /// which pays it the uptime bonus. Same caller and window rules as `submitReceipts`;
    /// attestations must ascend strictly by signer.
    /// @param relayer The attested relayer.
    /// @param epoch The epoch attested.
    /// @param attestations Signatures of other relayers' signers over their Uptime measurements.
    function submitUptime(address relayer, uint64 epoch, Attestation[] calldata attestations) external {
        Era memory era = _checkSubmission(relayer, epoch);
        RelayerEpoch storage account = _relayerEpochs[epoch][relayer];
        if (account.uptimeBonus) revert UptimeAlreadyAttested(epoch, relayer);
        uint256 k = era.params.minAttestations;
        if (attestations.length < k) revert NotEnoughAttestations(attestations.length, k);
        uint256 startedAt = _startOf(era, epoch);
        address[] memory signers = new address[](attestations.length);
        address previous;
        for (uint256 i; i < attestations.length; ++i) {
            Attestation calldata a = attestations[i];
            if (a.signer <= previous) revert AttestersNotAscending(previous, a.signer);
            previous = a.signer;
            _checkAttestation(relayer, epoch, startedAt, a);
            signers[i] = a.signer;
        }
        account.uptimeBonus = true;
        _claimable[epoch] += account.boosted - account.base;
        emit UptimeAttested(epoch, relayer, signers);
    }

    /// @notice Mints `relayer`'s rewards for finished, closed epochs. Anyone may call; the tokens
    /// go to `relayer`.
    /// @param relayer The relayer (operator address).
    /// @param epochs Epochs to claim, each once.
    /// @return total X0T minted.
    function claim(address relayer, uint64[] calldata epochs) external returns (uint256 total) {
        uint64 current = currentEpoch();
        for (uint256 i; i < epochs.length; ++i) {
            uint64 epoch = epochs[i];
            Era memory era = _eraOf(epoch);
            if (uint256(epoch) + era.params.submissionWindow >= current) revert EpochNotFinal(epoch, current);
            RelayerEpoch storage account = _relayerEpochs[epoch][relayer];
            if (account.claimed) revert AlreadyClaimed(epoch, relayer);
            uint256 claimable = account.uptimeBonus ? account.boosted : account.base;
            if (claimable == 0) revert NothingToClaim(epoch, relayer);
            account.claimed = true;
            uint256 reward = RewardMath.poolShare(claimable, _claimable[epoch], era.params.poolPerEpoch);
            total += reward;
            emit RewardClaimed(epoch, relayer, reward);
        }
        token.mint(relayer, total);
    }

    // ---------------------------------------------------------------- governance

    /// @notice Sets the parameters from the next epoch on. Governance only.
    /// @param params_ rewardPerCell; poolPerEpoch (non-zero); relayShareBps (non-zero) and
    /// uptimeBonusBps (<= 50%) with relayShare * (1 + bonus) + treasuryShare <= 100%;
    /// minAttestations (1..32); submissionWindow (1..168 epochs).
    function setParams(Params calldata params_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkParams(params_);
        Era memory next = _eras[_eras.length - 1];
        next.params = params_;
        _schedule(next);
    }

    /// @notice Sets the epoch length from the next epoch on; epoch numbers stay continuous.
    /// Governance only.
    /// @param length Seconds, MIN_EPOCH_LENGTH..MAX_EPOCH_LENGTH.
    function setEpochLength(uint64 length) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkLength(length);
        Era memory next = _eras[_eras.length - 1];
        next.length = length;
        _schedule(next);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IEpochClock
    function currentEpoch() public view returns (uint64 epoch) {
        (epoch, ) = currentEpochEnd();
    }

    /// @notice The current epoch and the time it ends.
    function currentEpochEnd() public view returns (uint64 epoch, uint64 endsAt) {
        uint256 n = _eras.length;
        Era storage era = _eras[n - 1];
        if (block.timestamp < era.startTime) era = _eras[n - 2]; // at most one era is pending
        uint64 elapsed = (uint64(block.timestamp) - era.startTime) / era.length;
        epoch = era.fromEpoch + elapsed;
        endsAt = era.startTime + (elapsed + 1) * era.length;
    }

    /// @inheritdoc IEpochClock
    function receiptDeadline(uint64 epoch) external view returns (uint64) {
        return epoch + _eraOf(epoch).params.submissionWindow;
    }

    /// @notice The rules and timing of `epoch`: its era, and when it starts.
    function epochInfo(uint64 epoch) external view returns (Era memory era, uint64 startsAt) {
        era = _eraOf(epoch);
        startsAt = uint64(_startOf(era, epoch));
    }

    /// @notice The current parameters (those of the latest era, which may start next epoch).
    function params() external view returns (Params memory) {
        return _eras[_eras.length - 1].params;
    }

    /// @notice `relayer`'s account for `epoch`.
    function relayerEpoch(uint64 epoch, address relayer) external view returns (RelayerEpoch memory) {
        return _relayerEpochs[epoch][relayer];
    }

    /// @notice What all relayers earned in `epoch` before pool scaling.
    function epochClaimable(uint64 epoch) external view returns (uint256) {
        return _claimable[epoch];
    }

    /// @notice What `relayer` would be minted for `epoch` if the totals stay as they are.
    function pendingReward(uint64 epoch, address relayer) external view returns (uint256) {
        RelayerEpoch memory account = _relayerEpochs[epoch][relayer];
        if (account.claimed) return 0;
        uint256 claimable = account.uptimeBonus ? account.boosted : account.base;
        return RewardMath.poolShare(claimable, _claimable[epoch], _eraOf(epoch).params.poolPerEpoch);
    }

    /// @notice EIP-712 digest of a receipt, as a client key signs it.
    function receiptDigest(address relayer, uint64 epoch, uint64 cells, uint96 bytes_) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, relayer, epoch, cells, bytes_)));
    }

    /// @notice EIP-712 digest of an uptime attestation, as an attester's signer signs it.
    function uptimeDigest(
        address relayer,
        uint64 epoch,
        uint32 probes,
        uint32 answered,
        bytes32 measurements
    ) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(UPTIME_TYPEHASH, relayer, epoch, probes, answered, measurements)));
    }

    // ---------------------------------------------------------------- internals

    /// @dev Checks one receipt's signature and has the credit contract pay it. Returns the custom
    /// error that refused it, or the cells newly paid and the X0T released.
    function _accept(
        address relayer,
        uint64 epoch,
        Receipt calldata receipt
    ) private returns (bytes memory reason, uint256 newCells, uint256 value) {
        bytes32 digest = receiptDigest(relayer, epoch, receipt.cells, receipt.bytes_);
        (address recovered, , ) = ECDSA.tryRecover(digest, receipt.r, receipt.vs);
        if (recovered != receipt.key) {
            return (abi.encodeWithSelector(InvalidReceiptSignature.selector, receipt.key, recovered), 0, 0);
        }
        // The payer's side (key, lock, what is new) is BandwidthCredit's to judge; its custom
        // error becomes the rejection reason (empty only if the call ran out of gas, so mark it).
        try credit.consume(receipt.key, relayer, epoch, receipt.cells, receipt.bytes_) returns (
            uint256 cells,
            uint256 released
        ) {
            return ("", cells, released);
        } catch (bytes memory err) {
            return (err.length == 0 ? bytes(hex"00000000") : err, 0, 0);
        }
    }

    function _checkAttestation(address relayer, uint64 epoch, uint256 startedAt, Attestation calldata a) private view {
        if (
            a.probes < MIN_PROBES ||
            a.answered > a.probes ||
            uint256(a.answered) * BPS < uint256(a.probes) * MIN_UPTIME_BPS
        ) revert UptimeBelowMinimum(a.signer, a.probes, a.answered);
        address attester = registry.operatorOf(a.signer);
        // An attester must have been registered and staked before the epoch began: a relay
        // registered during the epoch did not watch all of it, and cannot be spun up to vouch.
        if (
            attester == address(0) ||
            attester == relayer ||
            registry.registeredAt(attester) >= startedAt ||
            !registry.isActiveAt(attester, startedAt)
        ) revert InvalidAttester(a.signer);
        bytes32 digest = uptimeDigest(relayer, epoch, a.probes, a.answered, a.measurements);
        (address recovered, , ) = ECDSA.tryRecover(digest, a.r, a.vs);
        if (recovered != a.signer) revert InvalidAttestationSignature(a.signer, recovered);
    }

    /// @dev Caller, window and activity checks shared by receipts and uptime; returns the epoch's era.
    function _checkSubmission(address relayer, uint64 epoch) private view returns (Era memory era) {
        (address signer, ) = registry.signerOf(relayer);
        if (msg.sender != relayer && msg.sender != signer) revert NotRelayerOrSigner(relayer, msg.sender);
        uint64 current = currentEpoch();
        if (epoch >= current) revert EpochNotOpen(epoch, current);
        era = _eraOf(epoch);
        if (current - epoch > era.params.submissionWindow) revert EpochNotOpen(epoch, current);
        // Judged at the epoch's end, under the minimum stake of that time: a later change of
        // `minStake` cannot strand receipts for traffic already carried.
        if (!registry.isActiveAt(relayer, _startOf(era, epoch + 1) - 1)) revert RelayerNotActive(relayer, epoch);
    }

    /// @dev Start time of `epoch`, which must belong to `era` or to the epochs right after it
    /// (the end of an era's last epoch is the start of the next era).
    function _startOf(Era memory era, uint64 epoch) private pure returns (uint256) {
        return uint256(era.startTime) + uint256(epoch - era.fromEpoch) * era.length;
    }

    /// @dev The era `epoch` belongs to: the last one with fromEpoch <= epoch (binary search; eras
    /// grow only by governance changes, at most one per epoch).
    function _eraOf(uint64 epoch) private view returns (Era memory) {
        uint256 low;
        uint256 high = _eras.length;
        while (high - low > 1) {
            uint256 mid = (low + high) / 2;
            if (_eras[mid].fromEpoch <= epoch) low = mid;
            else high = mid;
        }
        return _eras[low];
    }

    /// @dev Makes `next` apply from the next epoch, replacing a change already scheduled for it.
    function _schedule(Era memory next) private {
        (uint64 epoch, uint64 endsAt) = currentEpochEnd();
        next.fromEpoch = epoch + 1;
        next.startTime = endsAt;
        uint256 last = _eras.length - 1;
        if (_eras[last].fromEpoch == epoch + 1) _eras[last] = next;
        else _eras.push(next);
        emit EraScheduled(next.fromEpoch, next.startTime, next.length, next.params);
    }

    function _checkParams(Params memory p) private pure {
        if (
            p.poolPerEpoch == 0 ||
            p.relayShareBps == 0 ||
            p.uptimeBonusBps > MAX_UPTIME_BONUS_BPS ||
            uint256(p.relayShareBps) * (BPS + p.uptimeBonusBps) + uint256(p.treasuryShareBps) * BPS >
                uint256(BPS) * BPS ||
            p.minAttestations == 0 ||
            p.minAttestations > MAX_MIN_ATTESTATIONS ||
            p.submissionWindow == 0 ||
            p.submissionWindow > MAX_SUBMISSION_WINDOW
        ) revert InvalidParams(p);
    }

    function _checkLength(uint64 length) private pure {
        if (length < MIN_EPOCH_LENGTH || length > MAX_EPOCH_LENGTH) revert InvalidEpochLength(length);
    }
}
