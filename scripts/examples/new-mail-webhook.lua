-- new-mail-webhook.lua - tell a local web service about new mail.
--
-- Load it from the config:
--
--   lua { scripts = { "/etc/moonpost/new-mail-webhook.lua" } }
--
-- and set URL below. For every message stored in a mailbox (a delivery by
-- SMTP or `moonpost deliver`, an IMAP APPEND) the `mailbox.append` hook
-- POSTs a JSON object to it:
--
--   {"event":"new-mail","user":"alice@example.org","mailbox":"INBOX",
--    "uid":42,"uidvalidity":1700000000,"size":2048,
--    "from":"Ann <ann@example.org>","subject":"Lunch?"}
--
-- `from` and `subject` are there for deliveries (decoded to UTF-8); an
-- IMAP APPEND has neither.
--
-- The notification runs after the message is stored, in its own
-- coroutine: the SMTP client has its 250 already, and a web service that
-- is down or slow holds up no connection. A POST that fails (refused,
-- timed out, an answer other than 2xx) is logged and dropped; the message
-- is stored whatever happens here. Notifications wait in a bounded queue
-- (10000), so a service that hangs for hours costs dropped events (counted
-- in the log as event=events_dropped), not memory.
--
-- Only http:// is supported. A host name is looked up in DNS (not in
-- /etc/hosts): write 127.0.0.1 rather than localhost.

local URL = "http://127.0.0.1:8080/new-mail"
local TIMEOUT = 5 -- seconds; lua.timeout bounds it too

-- A small JSON encoder: strings, numbers, booleans, arrays and objects
-- with string keys, nested at most MAX_DEPTH deep.
local MAX_DEPTH = 8

local escapes = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return escapes[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
end

local encode

local function json_array(t, depth)
    local out = {}
    for i = 1, #t do
        out[i] = encode(t[i], depth + 1)
    end
    return "[" .. table.concat(out, ",") .. "]"
end

local function json_object(t, depth)
    local keys = {}
    for k in pairs(t) do
        if type(k) ~= "string" then
            error("JSON object keys must be strings", depth + 2)
        end
        keys[#keys + 1] = k
    end
    table.sort(keys) -- a stable output, easier to read and to test
    local out = {}
    for i, k in ipairs(keys) do
        out[i] = json_string(k) .. ":" .. encode(t[k], depth + 1)
    end
    return "{" .. table.concat(out, ",") .. "}"
end

encode = function(v, depth)
    depth = depth or 0
    if depth > MAX_DEPTH then
        error("JSON nested too deep", depth + 2)
    end
    local kind = type(v)
    if kind == "string" then
        return json_string(v)
    elseif kind == "number" then
        if v ~= v or v == math.huge or v == -math.huge then
            return "null"
        end
        return math.type(v) == "integer" and tostring(v)
            or string.format("%.17g", v)
    elseif kind == "boolean" then
        return tostring(v)
    elseif kind == "nil" then
        return "null"
    elseif kind == "table" then
        if #v > 0 or next(v) == nil then
            return json_array(v, depth)
        end
        return json_object(v, depth)
    end
    error("cannot encode a " .. kind .. " value as JSON", depth + 2)
end

moonpost.hook("mailbox.append", function(ev)
    local body = encode({
        event = "new-mail",
        user = ev.user,
        mailbox = ev.mailbox,
        uid = ev.uid,
        uidvalidity = ev.uidvalidity,
        size = ev.size,
        from = ev.from,
        subject = ev.subject,
    })
    local status, err = moonpost.http.post(URL, body, {
        content_type = "application/json",
        timeout = TIMEOUT,
    })
    if status == nil then
        moonpost.log("warn", "new-mail webhook: " .. err)
    elseif status < 200 or status > 299 then
        moonpost.log("warn", "new-mail webhook: HTTP " .. status)
    end
end)
