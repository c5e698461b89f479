// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IPersonhoodSource
/// @notice A proof-of-personhood check that the VoterRegistry trusts (docs/governance.md): EAS
/// attestations today (EASPersonhoodSource); World ID or Human Passport can be added behind the same
/// interface by the DAO. A source maps a proof to an identity key: one key per person, so one key
/// registers one voter.
interface IPersonhoodSource {
    /// @notice Checks `proof` for `account` and returns the identity key it proves; reverts with the
    /// reason when the proof does not hold (wrong issuer, wrong recipient, revoked, expired…).
    /// @param account The address that wants to be a voter (the proof must name it).
    /// @param proof Source-specific bytes (an attestation uid, a zero-knowledge proof…).
    /// @return identity The key that can register only one voter at a time.
    function verify(address account, bytes calldata proof) external view returns (bytes32 identity);

    /// @notice Whether `identity`, once verified for `account`, still holds now (not revoked, not
    /// expired). The VoterRegistry lets anyone prune a voter for whom this is false.
    /// @param account The registered voter.
    /// @param identity The key returned by `verify` at registration.
    /// @return valid True while the proof still holds.
    function isValid(address account, bytes32 identity) external view returns (bool valid);
}
