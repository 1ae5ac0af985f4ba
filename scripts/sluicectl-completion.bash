# bash completion for sluicectl (installed by `meson install` as
# share/bash-completion/completions/sluicectl; or: source this file).
# Completes commands, subcommands, each command's options (the lists of
# `sluicectl COMMAND --help`) and service names from the running daemon.

_sluicectl_services() {
    local sock=()
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --socket | --instance) sock+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
        esac
    done
    sluicectl "${sock[@]}" service list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_sluicectl() {
    local cur prev words=() i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD - 1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --socket | --instance) ((i++)) ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
    done
    case "$prev" in
        --socket | --file | -f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --state) COMPREPLY=($(compgen -W "syn syn_recv established fin last_ack time_wait closed adopted udp udp_unanswered up down draining disabled" -- "$cur")); return ;;
        --proto) COMPREPLY=($(compgen -W "tcp udp" -- "$cur")); return ;;
        --mode) COMPREPLY=($(compgen -W "nat dnat dsr-l2 dsr-ipip dsr-gue" -- "$cur")); return ;;
        --scheduler) COMPREPLY=($(compgen -W "maglev rr wrr lc wlc sh random two-choices least-bandwidth least-response-time" -- "$cur")); return ;;
        --on-backend-down) COMPREPLY=($(compgen -W "keep reset" -- "$cur")); return ;;
        --hash-src) COMPREPLY=($(compgen -W "true false" -- "$cur")); return ;;
        --announce) COMPREPLY=($(compgen -W "quorum always never" -- "$cur")); return ;;
    esac
    local svc_opts="--vip --port --proto --mode --scheduler --hash-src --sh-prefix4 --sh-prefix6 --sh-timeout --gue-port --on-backend-down --timeout-syn --timeout-established --timeout-fin --timeout-udp --timeout-syn-recv --timeout-time-wait --timeout-closed --timeout-udp-unanswered --timeout-adopted --health --announce --quorum --defence --synproxy"
    local opts=""
    case "${words[0]} ${words[1]}" in
        "service add" | "service set") opts="$svc_opts" ;;
        "backend add") opts="--port --weight --state --health --max-conns --min-conns" ;;
        "backend drain") opts="--port --wait --timeout" ;;
        "backend del" | "backend set-weight" | "backend undrain") opts="--port" ;;
        apply\ *) opts="--file --dry-run" ;;
        restore\ *) opts="--file --dry-run" ;;
        list\ *) opts="--stats --rate --interval-ms" ;;
        top\ *) opts="--iterations --interval-ms" ;;
        conns\ *) opts="--backend --client --state --limit --no-header --page-size" ;;
        ports\ *) opts="--xstats" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --json --help --socket --instance --version" -- "$cur"))
        return
    fi
    case "${#words[@]}" in
        0) COMPREPLY=($(compgen -W "service backend instance apply save restore status list top conns zero ports bgp peers" -- "$cur")) ;;
        1)
            case "${words[0]}" in
                service) COMPREPLY=($(compgen -W "add del set list" -- "$cur")) ;;
                backend) COMPREPLY=($(compgen -W "add del set-weight drain undrain list" -- "$cur")) ;;
                instance) COMPREPLY=($(compgen -W "drain undrain" -- "$cur")) ;;
                list | conns | zero) COMPREPLY=($(compgen -W "$(_sluicectl_services)" -- "$cur")) ;;
            esac ;;
        2)
            case "${words[0]} ${words[1]}" in
                "service del" | "service set" | backend\ *) COMPREPLY=($(compgen -W "$(_sluicectl_services)" -- "$cur")) ;;
            esac ;;
    esac
}
complete -F _sluicectl sluicectl
