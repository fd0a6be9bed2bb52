-- sqlite-passdb.lua - accounts kept in an SQLite database, checked by the
-- `auth` hook before the passwd file.
--
-- Load it from the config:
--
--   lua { scripts = { "/etc/moonpost/sqlite-passdb.lua" } }
--
-- and make the database (the moonpost user only needs to read it):
--
--   sqlite3 /var/lib/moonpost/users.sqlite <<'SQL'
--   CREATE TABLE users (
--       address  TEXT PRIMARY KEY,        -- lower case: alice@example.org
--       password TEXT NOT NULL,           -- {YESCRYPT}$y$..., {BLF-CRYPT}...
--       enabled  INTEGER NOT NULL DEFAULT 1
--   );
--   SQL
--
-- The password column holds a hash in the passwd file's {SCHEME}hash form:
-- {YESCRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, or {CRYPT} with any hash
-- libxcrypt knows. `moonpost user add` makes them; it writes the passwd
-- file of a data directory, so hash the password in a scratch one (the
-- address there does not matter, the hash does not depend on it) and copy
-- the first word after the colon:
--
--   mkdir -m 700 /tmp/scratch
--   moonpost user add any@example.test --data-dir /tmp/scratch
--   hash=$(sed -n 's/^any@example.test:\([^ ]*\).*/\1/p' /tmp/scratch/passwd)
--   sqlite3 /var/lib/moonpost/users.sqlite \
--     "INSERT INTO users VALUES ('carol@example.org', '$hash', 1)"
--   rm -r /tmp/scratch
--
-- Hashes from Dovecot's `doveadm pw -s BLF-CRYPT` work as they are.
--
-- What the hook answers:
--   an enabled account with the right password   accept
--   an enabled account with a wrong password     reject
--   a disabled account                           reject
--   an address not in the table                  continue: the passwd file
--                                                decides, so its accounts
--                                                keep working
--   the database cannot be opened or read        defer: the client is told
--                                                to try again later; nobody
--                                                is let in or locked out
--
-- Queries and password checks run on the server's thread pool while the
-- handler waits, so a slow disk or a slow hash holds up nobody else.

local DB_PATH = "/var/lib/moonpost/users.sqlite"

-- Opened on first use rather than at load time, so that the server starts
-- (and passwd-file accounts work) while the database is missing; dropped
-- after an error, so that a replaced file is opened afresh.
local db

local function lookup(address)
    if db == nil then
        db = moonpost.sqlite.open(DB_PATH)
    end
    return db:query("SELECT password, enabled FROM users WHERE address = ?",
                    address)[1]
end

moonpost.hook("auth", function(a)
    local ok, row = pcall(lookup, a.user)
    if not ok then
        moonpost.log("error", "account database: " .. tostring(row))
        if db ~= nil then
            db:close()
            db = nil
        end
        return moonpost.defer("account database unavailable")
    end
    if row == nil then
        return moonpost.continue()
    end
    if row.enabled ~= 1 then
        return moonpost.reject("account disabled")
    end
    if moonpost.password_verify(a.password, row.password) then
        return moonpost.accept()
    end
    return moonpost.reject("wrong password")
end)
