export { createTurnServer, type TurnServer } from './server.js';
