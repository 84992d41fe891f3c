/* One rule per feature the planner accelerates; plant.py writes files that
 * match each of them, and the fidelity test checks that they do. */
import "pe"
rule feat_nocase { strings: $a = "InvokeShellcodeRunner" nocase condition: $a }
rule feat_wide { strings: $a = "kernel32-loader" wide condition: $a }
rule feat_hex_alt_wild { strings: $h = { 4D 5A ?? 90 ( 0B 1C | 2D 3E 4F ) [2-6] 55 8B EC 8? 9? } condition: $h }
rule feat_regex_literal { strings: $r = /trawl_beacon_[0-9]{4}\.example\.(com|net)/ condition: $r }
rule feat_xor_range { strings: $x = "ThisIsAnXorTestString" xor(0x10-0x30) condition: $x }
rule feat_base64 { strings: $b = "powershell -enc payload" base64 condition: $b }
rule feat_base64wide { strings: $b = "cmd.exe /c whoami" base64wide condition: $b }
rule feat_fullword_ascii_wide { strings: $a = "mimikatzish" fullword ascii wide condition: $a }
rule feat_count { strings: $a = "AAAAtrawlcountBBBB" condition: #a >= 1 and filesize < 10MB }
rule feat_uint32_literal { condition: uint32(0) == 0x464c457f }
rule feat_uint32be_literal { condition: uint32be(0) == 0x7f454c46 and filesize > 64 }
rule feat_pe_section_name { condition: for any i in (0..pe.number_of_sections - 1): (pe.sections[i].name == ".trwl") }
