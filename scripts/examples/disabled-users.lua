-- disabled-users.lua - refuse mail for accounts that are switched off.
--
-- Load it from the config:
--
--   lua { scripts = { "/etc/moonpost/disabled-users.lua" } }
--
-- An account that is disabled (someone left, a mailbox kept for the
-- record) still exists, so mail to it would be accepted and stored. This
-- refuses it at RCPT TO with "550 5.2.1", which tells the sender at once,
-- instead of the mail piling up unread.
--
-- The list is DISABLED below; for a list kept elsewhere, set DATABASE to
-- an SQLite file with a table `disabled(address TEXT PRIMARY KEY)` (see
-- sqlite-passdb.lua for the database binding). Both are consulted.

local DISABLED = {
    -- ["former.employee@example.org"] = true,
}

local DATABASE = nil -- e.g. "/var/lib/moonpost/disabled.sqlite"
local db = DATABASE and moonpost.sqlite.open(DATABASE)

local function disabled(address)
    address = address:lower()
    if DISABLED[address] then
        return true
    end
    if db then
        local rows = db:query("SELECT 1 FROM disabled WHERE address = ?",
                              address)
        return #rows > 0
    end
    return false
end

moonpost.hook("smtp.rcpt", function(tx, rcpt)
    if disabled(rcpt) then
        return moonpost.reject(550, "5.2.1", "mailbox disabled")
    end
end)
