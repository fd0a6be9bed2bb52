-- rate-limit.lua - defer senders who send too much, too fast.
--
-- Load it from the config:
--
--   lua { scripts = { "/etc/moonpost/rate-limit.lua" } }
--
-- Each sender (the authenticated user on submission, the envelope sender
-- on the MX port) may start LIMIT messages per WINDOW seconds; a message
-- beyond that gets "451 4.7.1" at MAIL FROM and the client retries later.
-- A compromised account then leaks a trickle, not a flood.
--
-- The counts live in this script's memory: they start again on a reload
-- (SIGHUP) or a restart, and each server process counts alone. Entries of
-- senders idle for a whole window are dropped as the table is swept, so
-- memory stays proportional to the senders of the last window.

local LIMIT = 100   -- messages
local WINDOW = 3600 -- seconds

local seen = {}     -- sender -> { start = time, count = n }
local size = 0
local last_sweep = moonpost.now()

local function sweep(now)
    if now - last_sweep < WINDOW then
        return
    end
    for who, entry in pairs(seen) do
        if now - entry.start >= WINDOW then
            seen[who] = nil
            size = size - 1
        end
    end
    last_sweep = now
end

moonpost.hook("smtp.mail", function(tx, sender)
    local who = tx.user or sender
    if who == nil or who == "" then
        return -- bounces have no sender to count
    end
    local now = moonpost.now()
    sweep(now)
    local entry = seen[who]
    if entry == nil or now - entry.start >= WINDOW then
        if entry == nil then
            size = size + 1
        end
        entry = { start = now, count = 0 }
        seen[who] = entry
    end
    entry.count = entry.count + 1
    if entry.count > LIMIT then
        moonpost.log("warn", "rate limit reached by " .. who)
        return moonpost.defer(451, "4.7.1",
                              "too many messages, try again later")
    end
end)
