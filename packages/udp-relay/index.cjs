'use strict';
// The addon, or null where it could not be built or loaded (another OS, no compiler): apps/turn
// then relays in JavaScript (apps/turn/src/data-plane/native-relay.ts).
let addon = null;
let reason;
try {
  addon = require('./build/Release/udp_relay.node');
} catch (err) {
  reason = err instanceof Error ? err.message : String(err);
}
module.exports = { addon, reason };
