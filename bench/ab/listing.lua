-- POST bench/queries/listing_screen.graphql with first: 20; counts non-200s and GraphQL errors.
local f = io.open(os.getenv("QUERY_FILE"), "r"); local q = f:read("*a"); f:close()
q = q:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", " ")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"' .. q .. '","variables":{"first":20}}'
local bad = 0
function response(status, headers, body) if status ~= 200 or body:find('"errors"') then bad = bad + 1 end end
function done(summary, latency, requests) io.write(string.format("BAD %d\n", bad)) end
