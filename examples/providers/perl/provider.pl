#!/usr/bin/env perl
# A Gleitzeit provider in Perl, core modules only, written from sdk/PROTOCOL.md.
#
#   wordcount/count {text}            -> {"words": N}                  (idempotent)
#   wordcount/slow  {seconds, steps}  -> {"steps": N}, with $/progress (cancellable)
#
# One process, one event loop: stdin is read with select(), slow requests are timers,
# so ping and $/cancelRequest are answered while work is in flight.
use strict;
use warnings;
use B ();
use IO::Select;
use JSON::PP;
use Time::HiRes qw(time);

use constant {
    MAX_BYTES     => 1 << 20,    # our maxMessageBytes (1 MiB)
    MAX_IN_FLIGHT => 4,
    MAX_DEPTH     => 128,        # PROTOCOL.md §1, "Value limits"
};

my $in  = JSON::PP->new->utf8->max_depth(MAX_DEPTH);
my $out = JSON::PP->new->utf8->canonical;

my $phase     = 'awaiting initialize';  # -> 'awaiting initialized' -> 'ready' -> 'shut down'
my $host_max  = 16 * 1024 * 1024;
my %running;                             # id key -> {id, token, step, steps, every, next_at}

sub send_msg {
    my ($msg) = @_;
    my $line = $out->encode($msg);
    if (length($line) > $host_max && exists $msg->{id}) {
        $line = $out->encode(error($msg->{id}, -32603, 'response exceeds the host maxMessageBytes',
                                   {type => 'MessageTooLarge', message => 'response too large', retryable => JSON::PP::false}));
    }
    return if length($line) > $host_max;    # an over-limit notification is dropped
    my $buf = "$line\n";
    while (length $buf) {
        my $n = syswrite(STDOUT, $buf);
        exit 0 unless defined $n;            # the host is gone
        substr($buf, 0, $n) = '';
    }
}

sub error {
    my ($id, $code, $message, $data) = @_;
    my %err = (code => $code, message => $message);
    $err{data} = $data if defined $data;
    return {jsonrpc => '2.0', id => $id, error => \%err};
}

sub reply { send_msg({jsonrpc => '2.0', id => $_[0], result => $_[1]}) }
sub fail  { send_msg(error(@_)) }

sub is_string { defined $_[0] && !ref $_[0] && (B::svref_2object(\$_[0])->FLAGS & B::SVp_POK) }
sub is_int {    # a JSON integer: decoded as an IV only (1.0 and 1e3 are NVs)
    return 0 if !defined $_[0] || ref $_[0];
    my $flags = B::svref_2object(\$_[0])->FLAGS;
    return ($flags & B::SVp_IOK) && !($flags & (B::SVp_NOK | B::SVp_POK)) ? 1 : 0;
}

# A key for an id that keeps 7 and "7" apart, computed on a copy: stringifying the id
# itself would make JSON::PP echo a number as a string.
sub id_key { my $copy = $_[0]; (is_string($_[0]) ? 's:' : 'n:') . $copy }

use constant INF => 9**9**9;

sub too_big {    # JSON::PP decodes a 5000-digit integer or 1e999 as infinity: refuse those
    my ($v) = @_;
    return (grep { too_big($_) } values %$v) ? 1 : 0 if ref $v eq 'HASH';
    return (grep { too_big($_) } @$v) ? 1 : 0 if ref $v eq 'ARRAY';
    return 0 if ref $v || !defined $v || is_string($v);
    return abs($v) == INF ? 1 : 0;
}

my %SCHEMA = (
    'wordcount/count' => {type => 'object', properties => {text => {type => 'string'}},
                          required => ['text'], additionalProperties => JSON::PP::false},
    'wordcount/slow'  => {type => 'object',
                          properties => {seconds => {type => 'number', exclusiveMinimum => 0, maximum => 60},
                                         steps   => {type => 'integer', minimum => 1, maximum => 100}},
                          additionalProperties => JSON::PP::false},
);

sub check_params {    # enough of JSON Schema for the two schemas above; undef when fine
    my ($method, $params) = @_;
    my $schema = $SCHEMA{$method};
    for my $name (@{ $schema->{required} || [] }) {
        return "parameter '$name' is required" unless exists $params->{$name};
    }
    for my $name (sort keys %$params) {
        my $prop = $schema->{properties}{$name} or return "parameter '$name' is not allowed";
        my $v = $params->{$name};
        my $t = $prop->{type};
        return "parameter '$name' must be of type $t"
            if ($t eq 'string' && !is_string($v)) || ($t eq 'integer' && !is_int($v))
            || ($t eq 'number' && (ref $v || is_string($v) || !defined $v));
        return "parameter '$name' is out of range"
            if ($t ne 'string') && ((defined $prop->{minimum} && $v < $prop->{minimum})
                || (defined $prop->{maximum} && $v > $prop->{maximum})
                || (defined $prop->{exclusiveMinimum} && $v <= $prop->{exclusiveMinimum}));
    }
    return undef;
}

sub descriptors {
    return [
        {name => 'wordcount/count', description => 'Count the words of a text.', idempotent => JSON::PP::true,
         paramsSchema => $SCHEMA{'wordcount/count'}, resultSchema => {type => 'object'}},
        {name => 'wordcount/slow', description => 'Take a while, reporting progress.', idempotent => JSON::PP::true,
         defaultTimeoutSec => 120, paramsSchema => $SCHEMA{'wordcount/slow'}, resultSchema => {type => 'object'}},
    ];
}

sub initialize {
    my ($id, $params) = @_;
    return fail($id, -32600, 'initialize: already initialized') if $phase ne 'awaiting initialize';
    my $version = ref $params eq 'HASH' ? $params->{protocolVersion} : undef;
    if (!is_string($version) || $version ne '1') {
        return fail($id, -32602, 'initialize: unsupported protocolVersion; supported: 1',
                    {supported => ['1'], requested => $version});
    }
    my $limit = (ref $params->{limits} eq 'HASH') ? $params->{limits}{maxMessageBytes} : undef;
    $host_max = $limit if is_int($limit) && $limit >= 1024;
    $phase = 'awaiting initialized';
    reply($id, {
        protocolVersion => '1',
        provider        => {name => 'wordcount', version => '1.0.0'},
        protocols       => ['wordcount/v1'],
        capabilities    => {cancellation => JSON::PP::true, progress => JSON::PP::true, output => JSON::PP::false,
                            logging => JSON::PP::false, concurrency => {maxInFlight => MAX_IN_FLIGHT}},
        limits          => {maxMessageBytes => MAX_BYTES},
        methods         => descriptors(),
    });
}

sub task {
    my ($id, $method, $params) = @_;
    $params //= {};
    return fail($id, -32602, "invalid params for $method: params must be an object") if ref $params ne 'HASH';
    my %p = %$params;
    my $meta = delete $p{_meta} // {};
    return fail($id, -32602, "invalid params for $method: _meta must be an object") if ref $meta ne 'HASH';
    return fail($id, -32600, "$method: id is already in flight") if $running{ id_key($id) };
    if (keys %running >= MAX_IN_FLIGHT) {
        return fail($id, -32001, "$method: overloaded",
                    {type => 'Overloaded', message => 'too many requests in flight', retryable => JSON::PP::true,
                     maxInFlight => MAX_IN_FLIGHT});
    }
    if (my $problem = check_params($method, \%p)) {
        return fail($id, -32602, "invalid params for $method: $problem");
    }
    if ($method eq 'wordcount/count') {
        my @words = split ' ', $p{text};
        return reply($id, {words => scalar @words});
    }
    my $steps = $p{steps} // 5;
    my $every = ($p{seconds} // 1) / $steps;
    $running{ id_key($id) } = {id => $id, token => $meta->{progressToken}, step => 0, steps => $steps,
                               every => $every, next_at => time + $every};
}

sub handle {
    my ($msg) = @_;
    return fail(undef, -32600, 'batches are not supported') if ref $msg eq 'ARRAY';
    return fail(undef, -32600, 'a message must be a JSON object') if ref $msg ne 'HASH';
    return fail(undef, -32600, 'value outside the protocol limits (number too large)') if too_big($msg);
    my $has_id = exists $msg->{id};
    my $id = $msg->{id};
    if ($has_id && !(is_string($id) || is_int($id))) {
        return fail(undef, -32600, 'id must be a string or an integer');
    }
    my $reply_id = $has_id ? $id : undef;
    return fail($reply_id, -32600, 'jsonrpc must be "2.0"') unless is_string($msg->{jsonrpc}) && $msg->{jsonrpc} eq '2.0';
    if (!exists $msg->{method}) {
        return if $has_id && (exists $msg->{result} || exists $msg->{error});    # a response: ignored
        return fail($reply_id, -32600, 'method is missing');
    }
    my $method = $msg->{method};
    return fail($reply_id, -32600, 'method must be a string') unless is_string($method);
    my $params = $msg->{params};
    return fail($reply_id, -32600, 'params must be an object or an array')
        if exists $msg->{params} && ref $params ne 'HASH' && ref $params ne 'ARRAY';

    if (!$has_id) {    # a notification: never answered
        $phase = 'ready' if $method eq 'initialized' && $phase eq 'awaiting initialized';
        cancel($params->{id}) if $method eq '$/cancelRequest' && ref $params eq 'HASH' && defined $params->{id};
        return;
    }
    return fail($id, -32600, "$method: the provider is shut down") if $phase eq 'shut down';
    return initialize($id, $params) if $method eq 'initialize';
    return reply($id, {}) if $method eq 'ping';
    return fail($id, -32002, "$method: not initialized") if $phase ne 'ready';
    if ($method eq 'shutdown') { $phase = 'shut down'; return reply($id, undef) }
    return reply($id, {status => 'ok', inFlight => scalar(keys %running), maxInFlight => MAX_IN_FLIGHT})
        if $method eq 'health';
    return task($id, $method, $params) if $SCHEMA{$method};
    return fail($id, -32601, "method not found: $method");
}

sub cancel {
    my ($target) = @_;
    my $job = delete $running{ id_key($target) } or return;    # unknown or answered: ignored
    fail($job->{id}, -32800, 'request cancelled', {type => 'Cancelled', message => 'request cancelled',
                                                   retryable => JSON::PP::false});
}

sub tick {    # advance the slow requests whose next step is due
    my $now = time;
    for my $key (sort keys %running) {
        my $job = $running{$key};
        next if $job->{next_at} > $now;
        $job->{step}++;
        $job->{next_at} += $job->{every};
        send_msg({jsonrpc => '2.0', method => '$/progress',
                  params => {token => $job->{token}, progress => $job->{step}, total => $job->{steps}}})
            if defined $job->{token};
        if ($job->{step} >= $job->{steps}) {
            delete $running{$key};
            reply($job->{id}, {steps => $job->{steps}});
        }
    }
}

sub finish {    # stdin EOF or SIGTERM: cancel what runs, answer it, exit 0
    cancel($_->{id}) for values %running;
    exit 0;
}

$SIG{TERM} = \&finish;
$SIG{PIPE} = 'IGNORE';
binmode STDIN;
binmode STDOUT;

my $select  = IO::Select->new(\*STDIN);
my $buf     = '';
my $discard = 0;    # inside an over-limit line, skipping to its end
while (1) {
    my @due = map { $_->{next_at} } values %running;
    my ($next) = sort { $a <=> $b } @due;
    my $wait = defined $next ? ($next - time > 0 ? $next - time : 0) : undef;
    if ($select->can_read($wait)) {
        my $n = sysread(STDIN, my $chunk, 65536);
        finish() unless $n;
        $buf .= $chunk;
        while ((my $nl = index($buf, "\n")) >= 0) {
            my $line = substr($buf, 0, $nl);
            substr($buf, 0, $nl + 1) = '';
            if ($discard) { $discard = 0; next }
            $line =~ s/\r\z//;
            next unless $line =~ /\S/;
            if (length($line) > MAX_BYTES) {
                fail(undef, -32600, 'line longer than maxMessageBytes', {maxMessageBytes => MAX_BYTES});
                next;
            }
            my $msg = eval { $in->decode($line) };
            if ($@) { fail(undef, -32700, 'parse error: not JSON, not UTF-8, or nested too deep'); next }
            handle($msg);
        }
        if (!$discard && length($buf) > MAX_BYTES) {
            fail(undef, -32600, 'line longer than maxMessageBytes', {maxMessageBytes => MAX_BYTES});
            ($buf, $discard) = ('', 1);
        }
        $buf = '' if $discard;
    }
    tick();
}
