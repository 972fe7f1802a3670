import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { startLive } from './live';
import './style.css';

const app = createApp(App);
app.use(createPinia());
app.mount('#app');

const stop = startLive();
// Close the socket cleanly so the server does not keep a half-open client around.
window.addEventListener('pagehide', stop);
