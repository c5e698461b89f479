// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title X0T, the x0tta6bl4 network token
/// @notice ERC-20 with EIP-2612 permit and ERC-5805 votes (timestamp clock). Total supply never
/// exceeds 1,000,000,000 X0T. A share of every transfer (1% at deployment) is burned; mints and
/// burns pay nothing, and transfers to or from fee-exempt accounts (the protocol's own contracts)
/// pay nothing, so staking or buying credit does not lose the fee twice.
/// @dev Roles:
/// - DEFAULT_ADMIN_ROLE (the governance timelock): burn rate, fee exemptions, granting MINTER_ROLE.
/// - MINTER_ROLE (EpochRewards only): mints relay rewards inside the cap.
/// The genesis allocation is minted once in the constructor and is bounded by GENESIS_MAX; the
/// rest of the cap is the reward reserve, reachable only through MINTER_ROLE.
contract X0T is ERC20, ERC20Burnable, ERC20Capped, ERC20Permit, ERC20Votes, AccessControl {
    /// @notice Role allowed to mint rewards (granted to EpochRewards at deployment).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice Hard cap on total supply: 1,000,000,000 X0T.
    uint256 public constant MAX_SUPPLY = 1_000_000_000e18;
    /// @notice Most that the constructor may mint (40% of the cap); the rest is the reward reserve.
    uint256 public constant GENESIS_MAX = 400_000_000e18;
    /// @notice Highest transfer burn rate governance may set (5%).
    uint16 public constant MAX_BURN_BPS = 500;
    uint16 private constant BPS = 10_000;

    /// @notice One line of the genesis allocation.
    struct Allocation {
        address recipient;
        uint256 amount;
    }

    /// @notice Share of each transfer that is burned, in basis points.
    uint16 public burnBps;
    /// @notice Accounts whose incoming and outgoing transfers pay no burn.
    mapping(address account => bool) public isFeeExempt;

    /// @notice The transfer burn rate changed.
    event BurnRateChanged(uint16 previousBps, uint16 newBps);
    /// @notice An account was made fee-exempt or lost its exemption.
    event FeeExemptionSet(address indexed account, bool exempt);
    /// @notice A genesis allocation was minted.
    event GenesisAllocated(address indexed recipient, uint256 amount);

    error BurnRateTooHigh(uint16 bps, uint16 max);
    error GenesisTooLarge(uint256 total, uint256 max);
    error ZeroAddress();

    /// @param admin Holder of DEFAULT_ADMIN_ROLE (the governance timelock, or a deployer that hands over).
    /// @param genesis Allocations minted now; their sum must not exceed GENESIS_MAX.
    /// @param initialBurnBps Transfer burn rate in basis points (100 = 1%).
    constructor(
        address admin,
        Allocation[] memory genesis,
        uint16 initialBurnBps
    ) ERC20("x0tta6bl4", "X0T") ERC20Permit("x0tta6bl4") ERC20Capped(MAX_SUPPLY) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setBurnBps(initialBurnBps);
        uint256 total;
        for (uint256 i; i < genesis.length; ++i) {
            total += genesis[i].amount;
            _mint(genesis[i].recipient, genesis[i].amount);
            emit GenesisAllocated(genesis[i].recipient, genesis[i].amount);
        }
        if (total > GENESIS_MAX) revert GenesisTooLarge(total, GENESIS_MAX);
    }

    /// @notice Mints rewards. Only MINTER_ROLE (EpochRewards); reverts above the cap.
    /// @param to Recipient of the new tokens.
    /// @param amount Amount in wei.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Sets the share of each transfer that is burned. Governance only.
    /// @param bps Basis points, at most MAX_BURN_BPS.
    function setBurnBps(uint16 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setBurnBps(bps);
    }

    /// @notice Exempts an account (a protocol contract) from the transfer burn, or ends it. Governance only.
    /// @param account The account.
    /// @param exempt True to exempt.
    function setFeeExempt(address account, bool exempt) external onlyRole(DEFAULT_ADMIN_ROLE) {
        isFeeExempt[account] = exempt;
        emit FeeExemptionSet(account, exempt);
    }

    /// @notice Burn that a transfer of `value` from `from` to `to` would pay now.
    /// @param from Sender.
    /// @param to Recipient.
    /// @param value Amount sent.
    /// @return fee Amount burned; the recipient gets `value - fee`.
    function transferFee(address from, address to, uint256 value) public view returns (uint256 fee) {
        if (from == address(0) || to == address(0) || isFeeExempt[from] || isFeeExempt[to]) return 0;
        return (value * burnBps) / BPS;
    }

    /// @notice EIP-6372 clock: votes are checkpointed by timestamp (robust on L2s).
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice EIP-6372 clock mode.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _setBurnBps(uint16 bps) private {
        if (bps > MAX_BURN_BPS) revert BurnRateTooHigh(bps, MAX_BURN_BPS);
        emit BurnRateChanged(burnBps, bps);
        burnBps = bps;
    }

    /// @dev The burn is a real `Transfer(from, 0, fee)` so explorers and indexers see it as a burn.
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped, ERC20Votes) {
        uint256 fee = transferFee(from, to, value);
        if (fee != 0) {
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}
