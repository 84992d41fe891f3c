// Crawlers, search engines and reconnaissance of exposed services.

rule web_crawler
{
    meta:
        name = "Web Crawler"
        category = "activity"
        intention = "unknown"
        description = "A client calling itself a bot, crawler or spider."
    condition:
        http_user_agent matches /(bot|crawler|spider)\b/i
}

rule googlebot
{
    meta:
        name = "Googlebot"
        category = "search_engine"
        intention = "benign"
        description = "Google's web crawler (claimed by its User-Agent; an actor entry confirms it by address)."
    condition:
        http_user_agent contains "Googlebot"
}

rule bingbot
{
    meta:
        name = "Bingbot"
        category = "search_engine"
        intention = "benign"
        description = "Microsoft Bing's web crawler (by User-Agent)."
    condition:
        http_user_agent icontains "bingbot"
}

rule censys
{
    meta:
        name = "Censys Scanner"
        category = "search_engine"
        intention = "benign"
        description = "Censys's internet-wide scanner announcing itself."
        references = "https://support.censys.io/hc/en-us/articles/360043177092"
    condition:
        http_user_agent icontains "CensysInspect"
}

rule expanse
{
    meta:
        name = "Expanse Scanner"
        category = "search_engine"
        intention = "benign"
        description = "Palo Alto Networks' Expanse attack-surface scanner."
    condition:
        http_user_agent icontains "Expanse"
}

rule env_scanner
{
    meta:
        name = ".env Scanner"
        category = "activity"
        intention = "malicious"
        description = "Requests for .env files, which hold application secrets."
    condition:
        http_path matches /\/\.env(\.[a-z0-9_]+)?$/i
}

rule git_config
{
    meta:
        name = "Git Config Crawler"
        category = "activity"
        intention = "malicious"
        description = "Requests for an exposed .git directory (config, HEAD, index)."
    condition:
        http_path matches /\/\.git\/(config|HEAD|index|logs\/HEAD)$/
}

rule docker_api
{
    meta:
        name = "Docker API Scanner"
        category = "activity"
        intention = "malicious"
        description = "Probes of the Docker Engine API (ports 2375/2376, /containers/json, /images/json)."
    condition:
        http_path matches /^(\/v1\.[0-9]+)?\/(containers|images)\/json/ or
        ((dst_port == 2375 or dst_port == 2376) and http_path matches /^(\/v1\.[0-9]+)?\/(version|info|_ping)$/)
}

rule wordpress_crawler
{
    meta:
        name = "WordPress Crawler"
        category = "activity"
        intention = "unknown"
        description = "Requests for WordPress paths (wp-content, wp-includes, xmlrpc.php, wp-json)."
    condition:
        http_path matches /\/(wp-(content|includes|admin|json)\/|xmlrpc\.php)/
}

rule wordpress_login
{
    meta:
        name = "WordPress Login Bruteforcer"
        category = "activity"
        intention = "malicious"
        description = "Credentials posted to wp-login.php."
    condition:
        http_method == "POST" and http_path endswith "/wp-login.php"
}

rule phpmyadmin
{
    meta:
        name = "phpMyAdmin Scanner"
        category = "activity"
        intention = "unknown"
        description = "Searches for phpMyAdmin installations."
    condition:
        http_path matches /\/(phpmyadmin|pma|myadmin|phpMyAdmin)[0-9._-]*\//i
}

rule elasticsearch
{
    meta:
        name = "Elasticsearch Crawler"
        category = "activity"
        intention = "unknown"
        description = "Elasticsearch API requests (_cat, _nodes, _search, _cluster)."
    condition:
        http_path matches /^\/_(cat|nodes|search|cluster|all)(\/|$)/
}

rule http_proxy
{
    meta:
        name = "Open Proxy Scanner"
        category = "activity"
        intention = "unknown"
        description = "CONNECT requests or absolute URLs: testing whether the host relays traffic."
    condition:
        http_method == "CONNECT" or http_path startswith "http://" or http_path startswith "https://"
}

rule rdp_crawler
{
    meta:
        name = "RDP Crawler"
        category = "activity"
        intention = "unknown"
        description = "RDP connection requests (an X.224 Connection Request in a TPKT)."
    strings:
        $cr = { 03 00 ?? ?? ?? E0 00 00 }
    condition:
        proto == "rdp" or rdp_cookie != "" or $cr at 0
}

rule redis_scanner
{
    meta:
        name = "Redis Scanner"
        category = "activity"
        intention = "unknown"
        description = "Commands sent to Redis's port."
    condition:
        proto == "redis" or (dst_port == 6379 and redis_command != "")
}

rule redis_unauth
{
    meta:
        name = "Redis Unauthorized Access Attempt"
        category = "activity"
        intention = "malicious"
        description = "Redis commands that rewrite the server's files or replicate from an attacker (CONFIG SET, SLAVEOF, MODULE LOAD, EVAL)."
    strings:
        $cfg = /config\s+set\s+(dir|dbfilename)/ nocase
        $slave = /(slaveof|replicaof)\s+[0-9]/ nocase
        $mod = /module\s+load/ nocase
    condition:
        redis_command matches /^(config set|slaveof|replicaof|module load|eval)\b/i or any of them
}

rule telnet_scanner
{
    meta:
        name = "Telnet Scanner"
        category = "activity"
        intention = "unknown"
        description = "Connections to a telnet login prompt."
    condition:
        proto == "telnet"
}

rule telnet_bruteforce
{
    meta:
        name = "Telnet Bruteforcer"
        category = "activity"
        intention = "malicious"
        description = "Credentials tried at a telnet login prompt."
    condition:
        proto == "telnet" and (username != "" or password != "")
}

rule ssh_bruteforce
{
    meta:
        name = "SSH Bruteforcer"
        category = "activity"
        intention = "malicious"
        description = "Credentials tried against SSH."
    condition:
        proto == "ssh" and (username != "" or password != "")
}

rule ssh_scanner
{
    meta:
        name = "SSH Scanner"
        category = "activity"
        intention = "unknown"
        description = "An SSH client that showed its version string."
    condition:
        proto == "ssh" and ssh_client != ""
}

rule sip_scanner
{
    meta:
        name = "SIP Scanner"
        category = "activity"
        intention = "unknown"
        description = "SIP OPTIONS or REGISTER requests."
    strings:
        $o = /^(OPTIONS|REGISTER|INVITE) sip:/
    condition:
        $o at 0
}

rule ntp_monlist
{
    meta:
        name = "NTP Monlist Scanner"
        category = "activity"
        intention = "malicious"
        cves = "CVE-2013-5211"
        description = "NTP mode 7 MON_GETLIST requests, the amplification probe."
    strings:
        $m = { 17 00 03 2A }
        $m2 = { 16 00 03 2A }
    condition:
        transport == "udp" and dst_port == 123 and ($m at 0 or $m2 at 0)
}

rule ssdp_scanner
{
    meta:
        name = "SSDP Scanner"
        category = "activity"
        intention = "unknown"
        description = "SSDP M-SEARCH discovery, also an amplification probe."
    strings:
        $s = "M-SEARCH * HTTP/1.1"
    condition:
        $s at 0
}

rule snmp_scanner
{
    meta:
        name = "SNMP Scanner"
        category = "activity"
        intention = "unknown"
        description = "SNMP requests with the default community string 'public'."
    strings:
        $p = { 04 06 70 75 62 6C 69 63 }
    condition:
        transport == "udp" and dst_port == 161 and $p
}

rule memcached_scanner
{
    meta:
        name = "Memcached Scanner"
        category = "activity"
        intention = "unknown"
        description = "memcached 'stats' requests (an amplification probe over UDP)."
    strings:
        $s = "stats" nocase
    condition:
        dst_port == 11211 and $s in (0..16)
}

rule adb_crawler
{
    meta:
        name = "ADB Crawler"
        category = "activity"
        intention = "unknown"
        description = "Android Debug Bridge CNXN handshakes on exposed devices."
    strings:
        $cnxn = "CNXN"
        $host = "host::"
    condition:
        $cnxn at 0 and $host
}

rule smb_scanner
{
    meta:
        name = "SMB Scanner"
        category = "activity"
        intention = "unknown"
        description = "SMB negotiations."
    condition:
        proto == "smb" or smb_dialects != ""
}
