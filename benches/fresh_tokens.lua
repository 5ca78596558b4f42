-- wrk script: every request carries the next token of the file named after `--` (one per line),
-- starting at the line given as the second argument, so no token is sent twice while the file
-- lasts (the harness checks that it did).
local tokens = {}
local next_token = 0

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  next_token = tonumber(args[2] or "0")
end

function request()
  next_token = next_token + 1
  local token = tokens[(next_token - 1) % #tokens + 1]
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
end
