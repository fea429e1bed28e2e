# GraphQL vs REST for one page of 100 players with their wallets (issue 17). Start a fresh hub
# (NASHUB_ADMIN_PASSWORD=admin-password-1 NASHUB_RATE_LIMIT_PER_USER=0 nashub serve), then:
#   python3 load-tests/graphql_bench.py http://127.0.0.1:8080
import json, time, urllib.request, statistics, sys
B = sys.argv[1]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(B + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token: req.add_header("Authorization", "Bearer " + token)
    import uuid; req.add_header("Idempotency-Key", str(uuid.uuid4()))
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")
su = call("POST", "/api/v1/auth/login", {"username": "admin", "password": "admin-password-1"})["access_token"]
c = call("POST", "/api/v1/clients", {"code": "bench", "name": "B", "currency": "USD"}, su)["id"]
adm = call("POST", "/api/v1/users", {"client_id": c, "role": "client_admin", "username": "boss", "password": "password-123"}, su)["id"]
at = call("POST", "/api/v1/auth/login", {"client": "bench", "username": "boss", "password": "password-123"})["access_token"]
ids = []
for i in range(100):
    u = call("POST", "/api/v1/users", {"role": "player", "username": f"player{i:03}", "password": "password-123"}, at)["id"]
    call("POST", f"/api/v1/users/{u}/wallet/deposit", {"amount": "5.00"}, at); ids.append(u)
q = {"query": "{ users(first: 101) { edges { node { id username client { code } wallet { balance } } } } }"}
def gql(): return call("POST", "/graphql", q, at)
def rest():
    users = call("GET", "/api/v1/users?limit=101", None, at)["items"]
    call("GET", f"/api/v1/clients/{c}", None, at)
    return [call("GET", f"/api/v1/users/{u['id']}/wallet", None, at)["balance"] for u in users if u["role"] != "super_admin"]
for name, f in [("graphql", gql), ("rest", rest)]:
    f(); ts = []
    for _ in range(20):
        t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1000)
    print(f"{name}: median {statistics.median(ts):.1f} ms, p90 {sorted(ts)[17]:.1f} ms over 20 runs")
