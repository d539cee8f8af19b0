# docs/config.md holds the key table generated from the code's tables.
. "$(dirname "$0")/lib.sh"
"$MG_BIN/madoguchid" --config-doc > "$T/gen.md"
# The doc's table sits between two markers; compare it with the generator.
sed -n '/<!-- keys:begin -->/,/<!-- keys:end -->/p' "$MG_SRC/docs/config.md" | sed '1d;$d' > "$T/doc.md"
# Build-dependent default paths are written as placeholders in the doc.
sed -i -E 's#`[^`]*/madoguchi/plugins`#`LIBDIR/madoguchi/plugins`#; s#`[^`]*/madoguchi/web`#`DATADIR/madoguchi/web`#' "$T/gen.md"
check "docs/config.md documents every key exactly (run: madoguchid --config-doc)" diff -u "$T/doc.md" "$T/gen.md"
summary
