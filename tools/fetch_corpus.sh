#!/usr/bin/env bash
# Assembles razor's default English corpus from freely licensed text shipped in Debian
# packages, and writes data/corpus/train.txt and data/corpus/valid.txt.
#
#   bash tools/fetch_corpus.sh [OUT_DIR]        (default OUT_DIR: data/corpus)
#
# Sources (see docs/corpus.md for licences):
#   bible-kjv-text  King James Bible, 1611 (public domain; decoded with the `bible` program
#                   from bible-kjv), one document per chapter
#   fortunes, fortunes-min  BSD fortune cookie files (BSD licence), one document per cookie
#   dict-jargon     The Jargon File 4.4.7 (public domain), one document per entry
#   dict-devil      The Devil's Dictionary, Ambrose Bierce 1911 (public domain), one per entry
#
# Output format: UTF-8 text; documents separated by one empty line ("\n\n"); inside a
# document there are no empty lines (paragraph breaks become single newlines), each line is
# trimmed and runs of blanks are collapsed to one space. Documents whose FNV-1a-32 hash
# modulo 1000 is below 30 (about 3%) go to valid.txt, the rest to train.txt.
# Deterministic: the same package versions give the same bytes (checked with sha256sum,
# printed at the end; the package versions used are written to SOURCES.txt).
# The data packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# OUT_DIR/.work (the dict-* packages would otherwise pull in and start the dictd daemon);
# only bible-kjv (the decoder program) is installed with apt-get install.
set -euo pipefail
export LC_ALL=C

OUT=${1:-data/corpus}
WORK=$OUT/.work
DATA_PKGS="fortunes-min fortunes dict-jargon dict-devil"
mkdir -p "$OUT" "$WORK/debs" "$WORK/root"
# apt's own output goes to this log, not the terminal: one line per package is printed here.
LOG=$(cd "$WORK" && pwd)/fetch.log  # absolute: the downloads run from $WORK/debs
: > "$LOG"
echo "fetch_corpus: fetching the default corpus from Debian packages into $OUT (apt output: $LOG)"

die() { echo "fetch_corpus: error: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 ||
  die "apt-get and dpkg-deb are needed (a Debian or Ubuntu system); on another system put train.txt and valid.txt in $OUT yourself"
# Root, or sudo that does not ask for a password; otherwise say the exact command to run.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1; fi
}
# Stops with MESSAGE unless root (or passwordless sudo) is available.
need_root() { as_root true || die "$@"; }
apt_logged() { echo "+ $*" >> "$LOG"; "$@" >> "$LOG" 2>&1; }

if ! command -v bible >/dev/null 2>&1; then
  install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bible-kjv)
  need_root "bible-kjv (the King James Bible and its decoder) must be installed as root: run" \
    "\`sudo apt-get install -y --no-install-recommends bible-kjv\`, then run razor again"
  if ! apt_logged as_root "${install[@]}"; then
    apt_logged as_root apt-get update || true
    apt_logged as_root "${install[@]}" || die "could not install bible-kjv; see $LOG"
  fi
  echo "fetch_corpus: bible-kjv $(dpkg-query -W -f '${Version}' bible-kjv-text) installed"
fi

: > "$WORK/SOURCES.txt"
for p in $DATA_PKGS; do
  if ! ls "$WORK/debs/${p}_"*.deb >/dev/null 2>&1; then
    if ! (cd "$WORK/debs" && apt_logged apt-get download "$p"); then
      need_root "apt-get download $p failed and the package lists cannot be updated without root:" \
        "run \`sudo apt-get update\`, then run razor again (details in $LOG)"
      apt_logged as_root apt-get update || true
      (cd "$WORK/debs" && apt_logged apt-get download "$p") || die "apt-get download $p failed; see $LOG"
    fi
  fi
  deb=$(ls "$WORK/debs/${p}_"*.deb | sort | tail -n 1)
  dpkg-deb -x "$deb" "$WORK/root"
  echo "$p $(dpkg-deb -f "$deb" Version)" >> "$WORK/SOURCES.txt"
  echo "fetch_corpus: $p $(dpkg-deb -f "$deb" Version)"
done
echo "bible-kjv-text $(dpkg-query -W -f '${Version}' bible-kjv-text)" >> "$WORK/SOURCES.txt"

FORT=$WORK/root/usr/share/games/fortunes
DICT=$WORK/root/usr/share/dictd
gzip -dc "$DICT/jargon.dict.dz" > "$WORK/jargon.dict"
gzip -dc "$DICT/devil.dict.dz" > "$WORK/devil.dict"
# One verse per line (very wide lines: no wrapping), whole Bible in canonical order.
bible -l 1000000 gen1:1-rev22:21 < /dev/null > "$WORK/kjv.txt"

# Fortune files: every plain cookie file except the ASCII-art ones and translate-me (Latin).
FORTUNE_FILES=$(cd "$FORT" && ls | grep -v -e '\.' -e '^art$' -e '^ascii-art$' -e '^translate-me$' | sort)

perl -e '
use strict; use warnings;
my ($out, $work, $fortdir, $dictdir, @ffiles) = @ARGV;

# Decode bytes as UTF-8 when valid, else as Latin-1 (a few old cookies); clean one document.
sub clean_doc {
  my ($text, $strip_braces) = @_;
  my $copy = $text;
  if (!utf8::decode($copy)) { $copy = $text; utf8::upgrade($copy); }
  $text = $copy;
  $text =~ s/\r\n?/\n/g;
  1 while $text =~ s/[^\x08\n]\x08//g;        # overstrike "X\bY" -> "Y"
  $text =~ s/\t/ /g;
  $text =~ s/[\x00-\x09\x0b-\x1f\x7f]//g;     # other control characters
  $text =~ s/[{}]//g if $strip_braces;          # dict cross-reference markup
  my @lines;
  for my $l (split /\n/, $text) {
    $l =~ s/^\s+//; $l =~ s/\s+$//; $l =~ s/[ \x{a0}]+/ /g;
    push @lines, $l if length $l;
  }
  my $d = join("\n", @lines);
  utf8::encode($d);
  return $d;
}

my @docs; my %seen; my %count;
sub add { my ($src, $d) = @_; return if length($d) < 8 || $seen{$d}++; push @docs, $d; $count{$src}++; }

# King James Bible: one document per chapter ("Genesis 1" heading, then verses without numbers).
open my $kjv, "<", "$work/kjv.txt" or die "kjv.txt: $!";
my $cur = "";
while (my $l = <$kjv>) {
  chomp $l;
  if ($l =~ /^\s+\d+ (.*)$/) { $cur .= "$1\n"; }
  elsif ($l =~ /\S/) { add("kjv", clean_doc($cur, 0)) if length $cur; $cur = "$l\n"; }
}
add("kjv", clean_doc($cur, 0)) if length $cur;

# Fortune cookies: records separated by lines holding only "%".
for my $f (@ffiles) {
  open my $fh, "<:raw", "$fortdir/$f" or die "$f: $!";
  local $/; my $all = <$fh>;
  for my $c (split /^%\r?\n/m, $all) { add("fortunes", clean_doc($c, 0)); }
}

# dictd databases: entries located through the .index (headword, base64 offset, length).
my %b64; my $i = 0; $b64{$_} = $i++ for ("A".."Z", "a".."z", "0".."9", "+", "/");
sub b64num { my $n = 0; $n = $n * 64 + $b64{$_} for split //, shift; return $n; }
for my $db ("jargon", "devil") {
  open my $fh, "<:raw", "$work/$db.dict" or die "$db.dict: $!";
  my $dict = do { local $/; <$fh> };
  open my $ix, "<:raw", "$dictdir/$db.index" or die "$db.index: $!";
  my %entry;
  while (my $l = <$ix>) {
    chomp $l; my ($head, $off, $len) = split /\t/, $l;
    next if $head =~ /^00-?database/;
    $entry{b64num($off)} = b64num($len);
  }
  for my $off (sort { $a <=> $b } keys %entry) {
    add($db, clean_doc(substr($dict, $off, $entry{$off}), 1));
  }
}

# Held-out split by document hash (FNV-1a 32).
open my $tr, ">:raw", "$out/train.txt.tmp" or die; open my $va, ">:raw", "$out/valid.txt.tmp" or die;
my ($ntr, $nva) = (0, 0);
for my $d (@docs) {
  use integer;
  my $h = 2166136261;
  for my $b (unpack("C*", $d)) { $h = (($h ^ $b) * 16777619) & 0xffffffff; }
  if ($h % 1000 < 30) { print $va ($nva++ ? "\n\n" : ""), $d; } else { print $tr ($ntr++ ? "\n\n" : ""), $d; }
}
print $tr "\n"; print $va "\n";
close $tr or die; close $va or die;
printf STDERR "fetch_corpus: %d documents (%s), train %d, valid %d\n", scalar(@docs),
  join(", ", map { "$_ $count{$_}" } sort keys %count), $ntr, $nva;
' "$OUT" "$WORK" "$FORT" "$DICT" $FORTUNE_FILES

mv "$OUT/train.txt.tmp" "$OUT/train.txt"
mv "$OUT/valid.txt.tmp" "$OUT/valid.txt"
cp "$WORK/SOURCES.txt" "$OUT/SOURCES.txt"
echo "fetch_corpus: packages: $(tr '\n' ';' < "$OUT/SOURCES.txt")"
for f in train.txt valid.txt; do
  printf 'fetch_corpus: %-10s %9d bytes %8d words  sha256 %s\n' "$f" "$(wc -c < "$OUT/$f")" \
    "$(wc -w < "$OUT/$f")" "$(sha256sum "$OUT/$f" | cut -c1-16)"
done
