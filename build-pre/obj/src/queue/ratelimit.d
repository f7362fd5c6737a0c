build-pre/obj/src/queue/ratelimit.o: src/queue/ratelimit.c \
 src/queue/ratelimit.h
src/queue/ratelimit.h:
