// HTTP and SSH client libraries, by the name they announce.

rule go_http_client
{
    meta:
        name = "Go HTTP Client"
        category = "tool"
        intention = "unknown"
        description = "Go's net/http default User-Agent."
    condition:
        http_user_agent startswith "Go-http-client/"
}

rule python_requests
{
    meta:
        name = "Python Requests Client"
        category = "tool"
        intention = "unknown"
        description = "The Python requests library's default User-Agent."
    condition:
        http_user_agent startswith "python-requests/"
}

rule python_urllib
{
    meta:
        name = "Python urllib Client"
        category = "tool"
        intention = "unknown"
        description = "Python's urllib default User-Agent."
    condition:
        http_user_agent startswith "Python-urllib/"
}

rule curl
{
    meta:
        name = "curl"
        category = "tool"
        intention = "unknown"
        description = "The curl command-line client's default User-Agent."
    condition:
        http_user_agent startswith "curl/"
}

rule wget
{
    meta:
        name = "Wget"
        category = "tool"
        intention = "unknown"
        description = "GNU Wget's default User-Agent."
    condition:
        http_user_agent startswith "Wget/" or http_user_agent startswith "Wget("
}

rule libwww_perl
{
    meta:
        name = "libwww-perl Client"
        category = "tool"
        intention = "unknown"
        description = "Perl's LWP default User-Agent."
    condition:
        http_user_agent startswith "libwww-perl/" or http_user_agent startswith "lwp-"
}

rule go_ssh_client
{
    meta:
        name = "Go SSH Client"
        category = "tool"
        intention = "unknown"
        description = "golang.org/x/crypto/ssh announcing itself."
    condition:
        ssh_client startswith "SSH-2.0-Go"
}

rule paramiko
{
    meta:
        name = "Paramiko SSH Client"
        category = "tool"
        intention = "unknown"
        description = "Python's Paramiko SSH library."
    condition:
        ssh_client icontains "paramiko"
}

rule libssh
{
    meta:
        name = "libssh Client"
        category = "tool"
        intention = "unknown"
        description = "The libssh client library."
    condition:
        ssh_client icontains "libssh"
}

rule empty_user_agent
{
    meta:
        name = "HTTP Request Without User-Agent"
        category = "activity"
        intention = "unknown"
        description = "An HTTP request that sends no User-Agent header at all."
    condition:
        proto == "http" and http_method != "" and http_user_agent == ""
}
