-- dnsbl.lua - refuse SMTP clients whose address is on a DNS blocklist.
--
-- Load it from the config:
--
--   lua { scripts = { "/etc/moonpost/dnsbl.lua" } }
--
-- and list the blocklist zones in LISTS below. For a client at 192.0.2.1
-- the hook looks up the A records of 1.2.0.192.<zone> (32 reversed nibbles
-- for IPv6); a list answers 127.0.0.2 to 127.0.0.11 for an address it
-- holds, and "no such domain" for one it does not.
--
-- What the hook answers:
--   the address is listed              reject 554 5.7.1, naming the list
--   not listed on any list             continue
--   a lookup failed (timeout,          continue, with a warning in the log:
--   SERVFAIL, no resolver)             fail open, so an outage of a list
--                                      never stops mail
--   an answer outside 127.0.0.2-11     continue, with a warning: lists
--                                      answer 127.255.255.x to refuse a
--                                      query (Spamhaus does for queries
--                                      from public resolvers), which is
--                                      not a listing
--   loopback or private client         continue, without a lookup
--
-- Spamhaus refuses queries that reach it through large public resolvers
-- (8.8.8.8, 1.1.1.1, ...): run a local resolver such as Unbound, and point
-- moonpost at it with `dns { servers = { "127.0.0.1:53" } }` or through
-- /etc/resolv.conf. Its free service is for low-volume, non-commercial
-- use; see https://www.spamhaus.org/ for the terms and a DQS key.
--
-- The lookups run while the connection waits for its greeting, one list
-- after the other; each is bounded by the `dns` timeout and the whole hook
-- by `lua.timeout` (when that runs out the client gets a 4xx and retries).

local LISTS = {
    "zen.spamhaus.org",
}

-- Addresses never worth a lookup: nobody lists them, and a private
-- address is one of ours.
local function is_private(ip)
    local a, b = ip:match("^(%d+)%.(%d+)%.%d+%.%d+$")
    if a then
        a, b = tonumber(a), tonumber(b)
        return a == 0 or a == 10 or a == 127
            or (a == 100 and b >= 64 and b <= 127)  -- carrier-grade NAT
            or (a == 169 and b == 254)
            or (a == 172 and b >= 16 and b <= 31)
            or (a == 192 and b == 168)
    end
    ip = ip:lower()
    return ip == "::1" or ip == "::"
        or ip:match("^f[cd]%x%x:") ~= nil           -- fc00::/7, unique local
        or ip:match("^fe[89ab]%x:") ~= nil          -- fe80::/10, link local
end

-- The first answer that means "listed", or nil.
local function listing(answers)
    for _, a in ipairs(answers) do
        local n = tonumber(a:match("^127%.0%.0%.(%d+)$"))
        if n and n >= 2 and n <= 11 then
            return a
        end
    end
    return nil
end

-- Asks one list about the reversed address rev; returns the reply text
-- when it lists the client, nil otherwise.
local function check(zone, rev, ip)
    local answers, err = moonpost.dns.a(rev .. "." .. zone, "ipv4")
    if answers == nil then
        moonpost.log("warn", ("dnsbl %s: lookup for %s failed (%s); not " ..
            "checked"):format(zone, ip, err))
        return nil
    end
    local hit = listing(answers)
    if hit then
        moonpost.log(("dnsbl %s lists %s (%s)"):format(zone, ip, hit))
        return ("%s is listed in %s"):format(ip, zone)
    end
    if #answers > 0 then
        moonpost.log("warn", ("dnsbl %s: unexpected answer %s for %s; " ..
            "not checked"):format(zone, answers[1], ip))
    end
    return nil
end

moonpost.hook("smtp.connect", function(tx)
    local ip = tx.ip
    if ip == nil or is_private(ip) then
        return
    end
    local rev = moonpost.dns.reverse_ip(ip)
    for _, zone in ipairs(LISTS) do
        local why = check(zone, rev, ip)
        if why then
            return moonpost.reject(554, "5.7.1", why)
        end
    end
end)
