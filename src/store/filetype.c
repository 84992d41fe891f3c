/* Short file types in MalwareBazaar's vocabulary, from libmagic's verdicts. */
#include "store/store.h"

#include <string.h>
#include <strings.h>

typedef struct mime_rule {
    const char *mime;
    const char *type;
} mime_rule;

/* Exact MIME types; checked after the description-based rules below. */
static const mime_rule mime_rules[] = {
    {"application/pdf", "pdf"},
    {"application/x-rar", "rar"},
    {"application/vnd.rar", "rar"},
    {"application/x-7z-compressed", "7z"},
    {"application/gzip", "gz"},
    {"application/x-gzip", "gz"},
    {"application/x-bzip2", "bz2"},
    {"application/x-xz", "xz"},
    {"application/zstd", "zst"},
    {"application/x-zstd", "zst"},
    {"application/x-lzma", "lzma"},
    {"application/x-tar", "tar"},
    {"application/x-cpio", "cpio"},
    {"application/x-iso9660-image", "iso"},
    {"application/vnd.debian.binary-package", "deb"},
    {"application/x-rpm", "rpm"},
    {"application/vnd.ms-cab-compressed", "cab"},
    {"application/x-ms-shortcut", "lnk"},
    {"application/msword", "doc"},
    {"application/vnd.ms-excel", "xls"},
    {"application/vnd.ms-powerpoint", "ppt"},
    {"application/x-msi", "msi"},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
    {"application/vnd.ms-word.document.macroEnabled.12", "docm"},
    {"application/vnd.ms-excel.sheet.macroEnabled.12", "xlsm"},
    {"application/vnd.oasis.opendocument.text", "odt"},
    {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
    {"application/vnd.oasis.opendocument.presentation", "odp"},
    {"application/java-archive", "jar"},
    {"application/x-java-archive", "jar"},
    {"application/vnd.android.package-archive", "apk"},
    {"application/x-java-applet", "class"},
    {"application/x-dex", "dex"},
    {"application/wasm", "wasm"},
    {"application/vnd.ms-htmlhelp", "chm"},
    {"application/vnd.ms-outlook", "msg"},
    {"application/x-shockwave-flash", "swf"},
    {"application/zip", "zip"},
    {"text/rtf", "rtf"},
    {"application/rtf", "rtf"},
    {"text/html", "html"},
    {"text/xml", "xml"},
    {"application/xml", "xml"},
    {"application/json", "json"},
    {"image/svg+xml", "svg"},
    {"text/x-shellscript", "sh"},
    {"text/x-script.python", "py"},
    {"text/x-python", "py"},
    {"text/x-perl", "pl"},
    {"text/x-php", "php"},
    {"text/x-msdos-batch", "bat"},
    {"application/javascript", "js"},
    {"text/javascript", "js"},
    {"image/png", "png"},
    {"image/jpeg", "jpg"},
    {"image/gif", "gif"},
    {"image/bmp", "bmp"},
    {"image/x-ms-bmp", "bmp"},
    {"image/vnd.microsoft.icon", "ico"},
    {"image/x-icon", "ico"},
    {"inode/x-empty", "empty"},
    {"application/x-empty", "empty"},
};

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *tr_filetype_classify(const char *mime, const char *desc,
                                 const unsigned char *head, size_t n)
{
    if (!mime)
        mime = "";
    if (!desc)
        desc = "";
    if (n == 0)
        return "empty";
    if (starts_with(desc, "PE32")) {
        if (strstr(desc, "(DLL)"))
            return "dll";
        if (strstr(desc, "(native)") || strstr(desc, "driver"))
            return "sys";
        if (strstr(desc, "EFI"))
            return "efi";
        return "exe";
    }
    if (starts_with(desc, "MS-DOS executable") || strcmp(mime, "application/x-dosexec") == 0)
        return "exe";
    if (starts_with(desc, "ELF") || (n >= 4 && memcmp(head, "\x7f" "ELF", 4) == 0))
        return "elf";
    if (starts_with(desc, "Mach-O"))
        return "macho";
    if (strstr(desc, "MSI Installer"))
        return "msi";
    if (strstr(desc, "Composite Document File") || strcmp(mime, "application/x-ole-storage") == 0 ||
        strcmp(mime, "application/CDFV2") == 0) {
        if (strstr(desc, "Microsoft Excel"))
            return "xls";
        if (strstr(desc, "PowerPoint"))
            return "ppt";
        if (strstr(desc, "Microsoft Word") || strstr(desc, "Microsoft Office Word"))
            return "doc";
    }
    for (size_t i = 0; i < sizeof mime_rules / sizeof mime_rules[0]; i++)
        if (strcmp(mime, mime_rules[i].mime) == 0)
            return mime_rules[i].type;
    if (strstr(desc, "Composite Document File"))
        return "ole";
    if (strstr(desc, "Zip archive"))
        return "zip";
    if (strstr(desc, "script") && strstr(desc, "Python"))
        return "py";
    if (starts_with(mime, "text/"))
        return "txt";
    return "unknown";
}

static const mime_rule script_extensions[] = {
    {"js", "js"},   {"jse", "js"},   {"vbs", "vbs"}, {"vbe", "vbs"}, {"ps1", "ps1"},
    {"psm1", "ps1"}, {"bat", "bat"}, {"cmd", "bat"}, {"hta", "hta"}, {"wsf", "wsf"},
    {"sh", "sh"},   {"py", "py"},    {"php", "php"}, {"pl", "pl"},   {"vba", "vba"},
    {"csv", "csv"}, {"xml", "xml"},  {"html", "html"}, {"htm", "html"}, {"svg", "svg"},
};

const char *tr_filetype_refine(const char *type, const char *file_name)
{
    if (!file_name || strcmp(type, "txt") != 0)
        return type;
    const char *dot = strrchr(file_name, '.');
    if (!dot || strchr(dot, '/'))
        return type;
    for (size_t i = 0; i < sizeof script_extensions / sizeof script_extensions[0]; i++)
        if (strcasecmp(dot + 1, script_extensions[i].mime) == 0)
            return script_extensions[i].type;
    return type;
}
