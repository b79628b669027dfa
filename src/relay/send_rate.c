#include "relay/send_rate.h"

void send_rate_init(send_rate *s)
{
    s->rate = 0.0;
    s->adjusted_ms = 0;
    s->next_ms = 0;
}

int send_rate_observe(send_rate *s, size_t sent, size_t throttled, int64_t elapsed_ms,
                      int64_t now_ms)
{
    if (throttled > 0) {
        double achieved = (double)sent * 1000.0 / (double)(elapsed_ms > 0 ? elapsed_ms : 1);
        double base = s->rate > 0.0 && s->rate < achieved ? s->rate : achieved;
        double next = base * 0.5;
        if (next < SEND_RATE_MIN_PER_S)
            next = SEND_RATE_MIN_PER_S;
        s->rate = next;
        s->adjusted_ms = now_ms;
        return 1;
    }
    if (s->rate > 0.0 && now_ms - s->adjusted_ms >= 1000) {
        int64_t seconds = (now_ms - s->adjusted_ms) / 1000;
        for (int64_t i = 0; i < seconds && s->rate <= SEND_RATE_UNLIMITED_ABOVE; i++)
            s->rate *= 1.25;
        s->adjusted_ms = now_ms;
        if (s->rate > SEND_RATE_UNLIMITED_ABOVE) {
            s->rate = 0.0;
            s->next_ms = 0;
            return -1;
        }
    }
    return 0;
}

int send_rate_batch_limit(const send_rate *s, int batch_size)
{
    if (s->rate <= 0.0)
        return batch_size;
    double half_second = s->rate * 0.5;
    if (half_second < 1.0)
        return 1;
    if (half_second >= (double)batch_size)
        return batch_size;
    return (int)half_second;
}

int64_t send_rate_wait_ms(const send_rate *s, int64_t now_ms)
{
    if (s->rate <= 0.0 || s->next_ms <= now_ms)
        return 0;
    return s->next_ms - now_ms;
}

void send_rate_consume(send_rate *s, size_t entries, int64_t now_ms)
{
    if (s->rate <= 0.0)
        return;
    int64_t start = s->next_ms > now_ms ? s->next_ms : now_ms;
    s->next_ms = start + (int64_t)((double)entries * 1000.0 / s->rate);
}
