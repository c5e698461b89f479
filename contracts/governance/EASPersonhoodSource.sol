// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEAS} from "@ethereum-attestation-service/eas-contracts/contracts/IEAS.sol";
import {Attestation} from "@ethereum-attestation-service/eas-contracts/contracts/Common.sol";
import {IPersonhoodSource} from "./IPersonhoodSource.sol";

/// @title EASPersonhoodSource
/// @notice Proof of personhood by an Ethereum Attestation Service attestation: the proof is the
/// attestation's uid, which must be of the configured schema, issued by the configured attester,
/// made out to the registering address, carry `true` as its data (the Coinbase "Verified Account"
/// schema's `bool verifiedAccount`), and be neither revoked nor expired. The identity key is the uid,
/// so one attestation registers one voter. On Base Sepolia: EAS is the OP-stack predeploy
/// 0x4200…0021 and the attester is Coinbase's (addresses and schema id in docs/governance.md).
/// @dev Stateless and immutable: a different attester or schema is a new source that the DAO enables
/// in the VoterRegistry.
contract EASPersonhoodSource is IPersonhoodSource {
    /// @notice The EAS contract that stores the attestations.
    IEAS public immutable eas;
    /// @notice The schema uid an attestation must have.
    bytes32 public immutable schema;
    /// @notice The only attester whose attestations count.
    address public immutable attester;

    /// @notice The proof is not exactly one 32-byte attestation uid.
    error MalformedProof(uint256 length);
    /// @notice No attestation with this uid exists.
    error UnknownAttestation(bytes32 uid);
    /// @notice The attestation is of another schema.
    error WrongSchema(bytes32 uid, bytes32 schema, bytes32 expected);
    /// @notice The attestation was issued by someone else than the trusted attester.
    error WrongAttester(bytes32 uid, address attester, address expected);
    /// @notice The attestation was made out to another address than the one registering.
    error WrongRecipient(bytes32 uid, address recipient, address account);
    /// @notice The attestation was revoked at `revocationTime`.
    error Revoked(bytes32 uid, uint64 revocationTime);
    /// @notice The attestation expired at `expirationTime`.
    error Expired(bytes32 uid, uint64 expirationTime);
    /// @notice The attestation's data is not `true`.
    error NotVerified(bytes32 uid);
    /// @notice A zero address was given for EAS or the attester.
    error ZeroAddress();

    enum Status {
        Valid,
        Unknown,
        Schema,
        Attester,
        Recipient,
        Revoked,
        Expired,
        Data
    }

    /// @param eas_ The EAS contract (the predeploy on OP-stack chains).
    /// @param schema_ The schema uid (Coinbase Verified Account on Base Sepolia).
    /// @param attester_ The trusted attester (Coinbase's attester on Base Sepolia).
    constructor(IEAS eas_, bytes32 schema_, address attester_) {
        if (address(eas_) == address(0) || attester_ == address(0)) revert ZeroAddress();
        eas = eas_;
        schema = schema_;
        attester = attester_;
    }

    /// @inheritdoc IPersonhoodSource
    function verify(address account, bytes calldata proof) external view returns (bytes32 identity) {
        if (proof.length != 32) revert MalformedProof(proof.length);
        identity = bytes32(proof);
        Attestation memory a = eas.getAttestation(identity);
        Status status = _status(a, account);
        if (status == Status.Unknown) revert UnknownAttestation(identity);
        if (status == Status.Schema) revert WrongSchema(identity, a.schema, schema);
        if (status == Status.Attester) revert WrongAttester(identity, a.attester, attester);
        if (status == Status.Recipient) revert WrongRecipient(identity, a.recipient, account);
        if (status == Status.Revoked) revert Revoked(identity, a.revocationTime);
        if (status == Status.Expired) revert Expired(identity, a.expirationTime);
        if (status == Status.Data) revert NotVerified(identity);
    }

    /// @inheritdoc IPersonhoodSource
    function isValid(address account, bytes32 identity) external view returns (bool valid) {
        return _status(eas.getAttestation(identity), account) == Status.Valid;
    }

    function _status(Attestation memory a, address account) private view returns (Status) {
        if (a.uid == bytes32(0)) return Status.Unknown;
        if (a.schema != schema) return Status.Schema;
        if (a.attester != attester) return Status.Attester;
        if (a.recipient != account) return Status.Recipient;
        if (a.revocationTime != 0) return Status.Revoked;
        if (a.expirationTime != 0 && a.expirationTime <= block.timestamp) return Status.Expired;
        if (a.data.length != 32 || bytes32(a.data) != bytes32(uint256(1))) return Status.Data;
        return Status.Valid;
    }
}
