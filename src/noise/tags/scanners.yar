// Scanner fingerprints. SYN-only probes carry the evidence in the packet:
// the pcap decoder fills ip_id, ttl, tcp_window, tcp_options, tcp_seq (and
// its own verdict in `scanner`); a listener fills none of them (-1, "").

rule zmap_client
{
    meta:
        name = "ZMap Client"
        category = "tool"
        intention = "unknown"
        description = "ZMap's SYN probes: IP ID 54321 (ZMap up to 4.0) and a 65535-byte window."
        references = "https://github.com/zmap/zmap"
    condition:
        scanner == "zmap" or (ip_id == 54321 and tcp_window == 65535 and handshake == 0)
}

rule masscan_client
{
    meta:
        name = "Masscan Client"
        category = "tool"
        intention = "unknown"
        description = "Masscan's probes: the IP ID is (destination address ^ destination port ^ sequence number) & 0xffff."
        references = "https://github.com/robertdavidgraham/masscan"
    condition:
        scanner == "masscan" or
        (ip_id >= 0 and tcp_seq >= 0 and dst_ip_int >= 0 and
         ((dst_ip_int ^ dst_port ^ tcp_seq) & 0xffff) == ip_id and
         (tcp_window == 1024 or tcp_window == 1025 or tcp_window == 1200)) or
        http_user_agent icontains "masscan"
}

rule nmap
{
    meta:
        name = "Nmap"
        category = "tool"
        intention = "unknown"
        description = "Nmap: SYN probes with a 1024-byte window and a lone MSS option, or its scripting engine and service probes."
        references = "https://nmap.org/book/"
    strings:
        $nse = "Nmap Scripting Engine"
        $probe = "nmaplowercheck"
    condition:
        scanner == "nmap" or
        (handshake == 0 and tcp_window == 1024 and tcp_options == "2" and ttl >= 0 and ttl < 64) or
        http_user_agent icontains "Nmap Scripting Engine" or any of them
}

rule mirai
{
    meta:
        name = "Mirai"
        category = "worm"
        intention = "malicious"
        description = "Mirai's SYN scanner: the TCP sequence number equals the destination address."
        references = "https://github.com/jgamblin/Mirai-Source-Code"
    condition:
        scanner == "mirai" or (tcp_seq >= 0 and dst_ip_int >= 0 and tcp_seq == dst_ip_int)
}

rule hping3
{
    meta:
        name = "hping3"
        category = "tool"
        intention = "unknown"
        description = "hping3's SYN packets: a 512-byte window and no TCP options."
        references = "http://www.hping.org/"
    condition:
        scanner == "hping3" or (handshake == 0 and tcp_window == 512 and tcp_options == "")
}

rule zgrab
{
    meta:
        name = "ZGrab Scanner"
        category = "tool"
        intention = "unknown"
        description = "ZGrab, ZMap's application-layer banner grabber."
        references = "https://github.com/zmap/zgrab2"
    condition:
        http_user_agent icontains "zgrab"
}

rule nuclei
{
    meta:
        name = "Nuclei Scanner"
        category = "tool"
        intention = "unknown"
        description = "ProjectDiscovery's Nuclei template scanner."
        references = "https://github.com/projectdiscovery/nuclei"
    condition:
        http_user_agent icontains "nuclei" or http_path icontains "nuclei" or http_query icontains "nuclei"
}

rule nikto
{
    meta:
        name = "Nikto"
        category = "tool"
        intention = "malicious"
        description = "The Nikto web vulnerability scanner."
        references = "https://github.com/sullo/nikto"
    condition:
        http_user_agent icontains "nikto"
}

rule sqlmap
{
    meta:
        name = "sqlmap"
        category = "tool"
        intention = "malicious"
        description = "sqlmap, automatic SQL injection."
        references = "https://sqlmap.org/"
    condition:
        http_user_agent icontains "sqlmap"
}

rule sipvicious
{
    meta:
        name = "SIPVicious Scanner"
        category = "tool"
        intention = "malicious"
        description = "SIPVicious (friendly-scanner) probing SIP servers."
        references = "https://github.com/EnableSecurity/sipvicious"
    strings:
        $a = "friendly-scanner" nocase
        $b = "sipvicious" nocase
    condition:
        any of them
}
