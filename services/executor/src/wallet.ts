// The wallet loader lives in @polybot/polymarket so the simulator can create the same dev wallet.
export { DEV_WALLET_FILE, loadWallet, WalletError, type LoadedWallet } from '@polybot/polymarket';
