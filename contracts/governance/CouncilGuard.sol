// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {BaseTransactionGuard} from "@safe-global/safe-smart-account/contracts/base/GuardManager.sol";
import {Enum} from "@safe-global/safe-smart-account/contracts/libraries/Enum.sol";

/// @title CouncilGuard
/// @notice Transaction guard of the treasury Safe: an allowlist, not a denylist. A council-signed
/// transaction may only
/// - call `transfer(to, amount)` on X0T with no ETH, or
/// - send ETH with empty calldata to any address but the Safe,
/// and only while the amounts paid in the current period stay within the caps the DAO sets. Every
/// other call is refused: no approve, delegate, registry, governor, module or owner call, no
/// DELEGATECALL, and no gas refund (a Safe transaction with a gas price pays its refund receiver
/// from the treasury, in ETH or any token, outside the cap). Module transactions (the DAO's TreasuryExecutor) do not pass through this guard.
/// @dev Who may call what:
/// - the Safe (any Safe that installs this guard, accounted separately): `checkTransaction`;
/// - the timelock: `setCaps`;
/// - the deployer: `setToken`, once, because X0T is deployed after the Safe that receives its
///   genesis allocation. Until then no token payout passes.
contract CouncilGuard is BaseTransactionGuard {
    /// @notice The amounts already paid out by a Safe in one period.
    struct Spent {
        uint128 token;
        uint128 eth;
    }

    /// @notice The governance timelock, which sets the caps.
    address public immutable timelock;
    address private immutable _deployer;
    /// @notice The token the council may pay out (X0T).
    IERC20 public token;
    /// @notice Most X0T (wei) a Safe may pay out per period.
    uint128 public tokenCap;
    /// @notice Most ETH (wei) a Safe may pay out per period.
    uint128 public ethCap;
    /// @notice Length of a period in seconds; periods are `block.timestamp / period`.
    uint64 public period;
    /// @notice Paid out by `safe` in period number `index`.
    mapping(address safe => mapping(uint256 index => Spent)) public spent;

    /// @notice The council's payout was accepted and counted against the caps.
    event PayoutCounted(
        address indexed safe,
        uint256 indexed periodIndex,
        address indexed to,
        uint256 tokens,
        uint256 eth
    );
    /// @notice The DAO set the caps.
    event CapsSet(uint128 tokenCap, uint128 ethCap, uint64 period);
    /// @notice The payout token was set (once).
    event TokenSet(IERC20 token);

    /// @notice The council tried a call outside the allowlist.
    error CallNotAllowed(address safe, address to, uint256 value, bytes4 selector);
    /// @notice The council tried a DELEGATECALL.
    error DelegateCallRefused(address safe, address to);
    /// @notice The council asked the Safe to refund gas (paid from the treasury outside the cap).
    error GasRefundRefused(address safe, uint256 gasPrice, address gasToken);
    /// @notice The payout would exceed the period's cap: `spent` + `amount` > `cap`.
    error CapExceeded(address safe, address asset, uint256 spent, uint256 amount, uint256 cap);
    /// @notice The caller may not do this.
    error Unauthorized(address caller);
    /// @notice The token was already set.
    error TokenAlreadySet(IERC20 token);
    /// @notice A zero address or a zero period was given.
    error InvalidParameter();

    /// @param timelock_ The governance timelock (sets the caps).
    /// @param tokenCap_ Initial X0T cap per period (wei).
    /// @param ethCap_ Initial ETH cap per period (wei).
    /// @param period_ Initial period length (seconds).
    constructor(address timelock_, uint128 tokenCap_, uint128 ethCap_, uint64 period_) {
        if (timelock_ == address(0)) revert InvalidParameter();
        timelock = timelock_;
        _deployer = msg.sender;
        _setCaps(tokenCap_, ethCap_, period_);
    }

    /// @notice Sets the token the council may pay out. Only the deployer, only once.
    /// @param token_ X0T.
    function setToken(IERC20 token_) external {
        if (msg.sender != _deployer) revert Unauthorized(msg.sender);
        if (address(token) != address(0)) revert TokenAlreadySet(token);
        if (address(token_) == address(0)) revert InvalidParameter();
        token = token_;
        emit TokenSet(token_);
    }

    /// @notice Sets the payout caps and the period. Only the timelock (by proposal).
    /// @param tokenCap_ X0T per period (wei).
    /// @param ethCap_ ETH per period (wei).
    /// @param period_ Period length in seconds (changing it starts a fresh count).
    function setCaps(uint128 tokenCap_, uint128 ethCap_, uint64 period_) external {
        if (msg.sender != timelock) revert Unauthorized(msg.sender);
        _setCaps(tokenCap_, ethCap_, period_);
    }

    /// @notice Called by the Safe before a council-signed transaction; reverts to refuse it, and
    /// otherwise counts the payout against the caps of the calling Safe.
    /// @dev `memory` as in Safe's interface: with eleven parameters, `calldata` runs out of stack.
    // solhint-disable-next-line gas-calldata-parameters
    function checkTransaction(
        address to,
        uint256 value,
        bytes memory data,
        Enum.Operation operation,
        uint256,
        uint256,
        uint256 gasPrice,
        address gasToken,
        address payable,
        bytes memory,
        address
    ) external override {
        if (operation != Enum.Operation.Call) revert DelegateCallRefused(msg.sender, to);
        // A refund (gasPrice > 0) pays ETH or any token of the Safe to a receiver the signers pick.
        if (gasPrice != 0) revert GasRefundRefused(msg.sender, gasPrice, gasToken);
        uint256 tokens;
        address recipient = to;
        if (_isTokenTransfer(to, value, data)) {
            (recipient, tokens) = _decodeTransfer(data);
        } else if (data.length != 0 || to == msg.sender) {
            // Anything but a plain ETH payment to someone else.
            revert CallNotAllowed(msg.sender, to, value, data.length >= 4 ? bytes4(data) : bytes4(0));
        }
        _count(recipient, tokens, value);
    }

    /// @notice Called by the Safe after a council-signed transaction; nothing to check.
    function checkAfterExecution(bytes32, bool) external pure override {}

    function _setCaps(uint128 tokenCap_, uint128 ethCap_, uint64 period_) private {
        if (period_ == 0) revert InvalidParameter();
        tokenCap = tokenCap_;
        ethCap = ethCap_;
        period = period_;
        emit CapsSet(tokenCap_, ethCap_, period_);
    }

    /// @dev Counts a payout of the calling Safe against the current period's caps.
    function _count(address recipient, uint256 tokens, uint256 eth) private {
        uint256 index = block.timestamp / period;
        Spent memory s = spent[msg.sender][index];
        if (s.token + tokens > tokenCap) revert CapExceeded(msg.sender, address(token), s.token, tokens, tokenCap);
        if (s.eth + eth > ethCap) revert CapExceeded(msg.sender, address(0), s.eth, eth, ethCap);
        // Both sums are at most a uint128 cap, so the casts are exact.
        spent[msg.sender][index] = Spent(uint128(s.token + tokens), uint128(s.eth + eth));
        emit PayoutCounted(msg.sender, index, recipient, tokens, eth);
    }

    function _isTokenTransfer(address to, uint256 value, bytes memory data) private view returns (bool) {
        return
            to == address(token) &&
            to != address(0) &&
            value == 0 &&
            data.length == 68 &&
            bytes4(data) == IERC20.transfer.selector;
    }

    function _decodeTransfer(bytes memory data) private pure returns (address recipient, uint256 amount) {
        // `data` is checked to be 4 + 64 bytes: the two words after the selector.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            recipient := and(mload(add(data, 36)), 0xffffffffffffffffffffffffffffffffffffffff)
            amount := mload(add(data, 68))
        }
    }
}
