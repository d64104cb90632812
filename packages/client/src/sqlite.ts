// `@sync-suite/client/sqlite`: persistence for Node and Electron (better-sqlite3, an optional peer dependency).
export {};
